-- IdP realities (issue 25). Short locks only: nullable columns without a default are catalog
-- changes (no table rewrite).
SET LOCAL lock_timeout = '5s';

-- A 2xx SCIM request can carry a warning: member ids of a group write that name no user of the
-- organization are skipped (the others applied) and listed here, for the activity log and
-- `org status`.
ALTER TABLE scim_activity ADD COLUMN warning text;
ALTER TABLE scim_activity ADD COLUMN skipped_members uuid[];

-- Role mappings per organization: IdP groups → application roles. A user's effective role is
-- the role of the highest-priority mapping whose group the user is a member of, else the
-- organization's default role (NULL: no role). With role_source 'scim_roles' the role comes
-- from the user's SCIM `roles` attribute (its primary value, else its first) instead.
-- New tables: no lock on anything that grows.
CREATE TABLE role_settings (
    org_id        uuid        PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    default_role  text,
    role_source   text        NOT NULL DEFAULT 'groups' CHECK (role_source IN ('groups', 'scim_roles')),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- A mapping names its group by id, displayName (case-insensitive, as groups are unique) or
-- externalId: it follows the group through a rename when named by id or externalId, and by
-- displayName applies to whichever group has that name now.
CREATE TABLE role_mappings (
    org_id      uuid    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    match_kind  text    NOT NULL CHECK (match_kind IN ('id', 'displayName', 'externalId')),
    match_value text    NOT NULL,
    role        text    NOT NULL,
    priority    integer NOT NULL,
    PRIMARY KEY (org_id, position)
);
CREATE UNIQUE INDEX role_mappings_group ON role_mappings (org_id, match_kind, lower(match_value));
