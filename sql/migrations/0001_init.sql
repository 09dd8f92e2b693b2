-- Organizations (tenants) and their SCIM bearer tokens.
-- Every later table carries org_id; no query runs without the organization taken from a token.

CREATE TABLE organizations (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scim_enabled  boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));

-- Only the SHA-256 digest of a token is stored; requests are authenticated by digest lookup.
CREATE TABLE scim_tokens (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    digest          bytea       NOT NULL CHECK (length(digest) = 32),
    display_prefix  text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    CONSTRAINT scim_tokens_digest_key UNIQUE (digest)
);
CREATE INDEX scim_tokens_org_idx ON scim_tokens (org_id, created_at);
