-- SCIM Groups and memberships.
--
-- Memberships are rows of a join table, never a JSON array: a group may have 50,000 members,
-- and adding or removing a thousand of them is one set-based statement. `member_count` is kept
-- by the writers (under the group's row lock) so size decisions never count the table.

CREATE TABLE groups (
    id            uuid        PRIMARY KEY,
    org_id        uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    attrs         jsonb       NOT NULL CHECK (jsonb_typeof(attrs) = 'object'),
    display_name  text        NOT NULL GENERATED ALWAYS AS (attrs ->> 'displayName') STORED,
    external_id   text        GENERATED ALWAYS AS (attrs ->> 'externalId') STORED,
    member_count  integer     NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- displayName is unique per organization, case-insensitively.
CREATE UNIQUE INDEX groups_org_display_name_key ON groups (org_id, lower(display_name) text_pattern_ops);
CREATE INDEX groups_org_external_id ON groups (org_id, external_id);
CREATE INDEX groups_org_created ON groups (org_id, created_at, id);
CREATE INDEX groups_org_updated ON groups (org_id, updated_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX groups_display_name_trgm ON groups USING gin (lower(display_name) gin_trgm_ops);
    END IF;
END $$;

-- The foreign keys keep memberships exact: a member is a user that exists. Writers check that
-- the user belongs to the group's organization before inserting (one set-based statement), and
-- deleting a user removes its memberships explicitly so the groups' versions and events follow;
-- ON DELETE CASCADE is the safety net.
CREATE TABLE group_members (
    group_id  uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);
