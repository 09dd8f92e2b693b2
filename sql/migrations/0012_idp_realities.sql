-- IdP realities (issue 25). Short locks only: nullable columns without a default are catalog
-- changes (no table rewrite).
SET LOCAL lock_timeout = '5s';

-- A 2xx SCIM request can carry a warning: member ids of a group write that name no user of the
-- organization are skipped (the others applied) and listed here, for the activity log and
-- `org status`.
ALTER TABLE scim_activity ADD COLUMN warning text;
ALTER TABLE scim_activity ADD COLUMN skipped_members uuid[];
