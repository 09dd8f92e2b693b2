-- Least privilege (issue 22). Short locks only: adding a column with a constant default is a
-- catalog change (no table rewrite), and no index is built on a table that grows.
SET LOCAL lock_timeout = '5s';

-- A failed authentication whose token matched no token at all carries only a public prefix
-- anyone can read off a token list: it is filed under the organizations owning that prefix as
-- *unverified*, and kept out of their error rate and of their SCIM_ACTIVITY_MAX_PER_ORG cap
-- (unverified entries have a cap of their own, see scim_service/activity.py).
ALTER TABLE scim_activity ADD COLUMN unverified boolean NOT NULL DEFAULT false;
