-- Least privilege (issue 22). Short locks only: adding a column with a constant default is a
-- catalog change (no table rewrite), and no index is built on a table that grows.
SET LOCAL lock_timeout = '5s';

-- A failed authentication whose token matched no token at all carries only a public prefix
-- anyone can read off a token list: it is filed under the organizations owning that prefix as
-- *unverified*, and kept out of their error rate and of their SCIM_ACTIVITY_MAX_PER_ORG cap
-- (unverified entries have a cap of their own, see scim_service/activity.py).
ALTER TABLE scim_activity ADD COLUMN unverified boolean NOT NULL DEFAULT false;

-- Scoped admin credentials, beside SCIM_ADMIN_TOKEN (the bootstrap operator credential). Like
-- SCIM tokens: only the SHA-256 digest is stored and looked up (never compared byte by byte),
-- the public prefix (`scimadm_` + 6 characters) is what lists and the audit trail show.
--   operator     everything
--   org:admin    one organization: its tokens, status, activity, guard, snapshots and events
--   events:read  the pull API and snapshots of its organizations (optionally some event types)
CREATE TABLE admin_credentials (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    digest          bytea       NOT NULL UNIQUE,
    display_prefix  text        NOT NULL,
    scope           text        NOT NULL CHECK (scope IN ('operator', 'org:admin', 'events:read')),
    org_ids         uuid[]      NOT NULL DEFAULT '{}',
    event_types     text[],     -- NULL: every type
    description     text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    CHECK (scope <> 'org:admin' OR cardinality(org_ids) = 1),
    CHECK (scope <> 'events:read' OR cardinality(org_ids) >= 1),
    CHECK (scope <> 'operator' OR (cardinality(org_ids) = 0 AND event_types IS NULL))
);

-- The audit trail: every admin action that changes something (admin API and CLI), with the
-- acting credential by its public prefix (SCIM_ADMIN_TOKEN for the bootstrap token, cli:USER
-- for a one-shot command). Append-only: no API updates or deletes an entry; only the
-- retention (SCIM_ACTIVITY_RETENTION_DAYS) removes old ones. Never a secret: no bodies.
CREATE TABLE admin_audit (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text        NOT NULL,
    credential_id  uuid,
    action         text        NOT NULL,
    org_id         uuid,
    target         text,
    outcome        text        NOT NULL CHECK (outcome IN ('ok', 'failed')),
    status         integer     NOT NULL,
    detail         text,
    request_id     text
);
CREATE INDEX admin_audit_org ON admin_audit (org_id, id);
CREATE INDEX admin_audit_at ON admin_audit (at);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only';
END $$;
CREATE TRIGGER admin_audit_append_only BEFORE UPDATE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();
