-- SCIM Users.
--
-- `attrs` holds what the client set (schema spelling, extensions under their URN), so PUT/GET
-- round-trip faithfully. The columns that are filtered, sorted or unique are GENERATED from
-- `attrs`, so they can never disagree with it. Server-owned state (id, setup state, version,
-- timestamps) lives in plain columns.

-- pg_trgm makes `co`/`ew` filters index-assisted. It is a trusted extension (a database owner
-- may create it); where it is missing (the embedded server) or not permitted, those filters
-- still work, by scanning the organization's users.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm not created (insufficient privilege): co/ew filters will scan';
END $$;

-- Lower-cased values of a multi-valued complex attribute's `value` sub-attribute.
CREATE FUNCTION scim_values_lower(items jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(
    SELECT lower(e ->> 'value')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(items) = 'array' THEN items ELSE '[]'::jsonb END) AS e
    WHERE jsonb_typeof(e) = 'object' AND e ->> 'value' IS NOT NULL
);

-- One text holding all values, newline-separated, for a trigram index over them.
CREATE FUNCTION scim_join(items text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_to_string(items, E'\n');

CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    org_id              uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    attrs               jsonb       NOT NULL CHECK (jsonb_typeof(attrs) = 'object'),
    user_name           text        NOT NULL GENERATED ALWAYS AS (attrs ->> 'userName') STORED,
    external_id         text        GENERATED ALWAYS AS (attrs ->> 'externalId') STORED,
    display_name        text        GENERATED ALWAYS AS (attrs ->> 'displayName') STORED,
    active              boolean     NOT NULL GENERATED ALWAYS AS (coalesce((attrs ->> 'active')::boolean, true)) STORED,
    emails              text[]      NOT NULL GENERATED ALWAYS AS (scim_values_lower(attrs -> 'emails')) STORED,
    setup_state         text        NOT NULL DEFAULT 'pending' CHECK (setup_state IN ('pending', 'complete')),
    setup_completed_at  timestamptz,
    version             bigint      NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- userName is unique per organization, case-insensitively (RFC 7643 §4.1: caseExact false).
-- text_pattern_ops serves equality and uniqueness (byte-wise equal) and also the byte-order
-- range scans that `sw` compiles to (see store/filters.py): one index for all three.
CREATE UNIQUE INDEX users_org_username_key ON users (org_id, lower(user_name) text_pattern_ops);
CREATE INDEX users_org_display_name ON users (org_id, lower(display_name) text_pattern_ops);
CREATE INDEX users_org_external_id ON users (org_id, external_id);
CREATE INDEX users_org_created ON users (org_id, created_at, id);
CREATE INDEX users_org_updated ON users (org_id, updated_at);
CREATE INDEX users_emails ON users USING gin (emails);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX users_username_trgm ON users USING gin (lower(user_name) gin_trgm_ops);
        CREATE INDEX users_display_name_trgm ON users USING gin (lower(display_name) gin_trgm_ops);
        CREATE INDEX users_emails_trgm ON users USING gin (scim_join(emails) gin_trgm_ops);
    END IF;
END $$;
