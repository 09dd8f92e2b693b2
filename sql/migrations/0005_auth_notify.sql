-- Every process caches token lookups for a few seconds; any change to a token or to an
-- organization's SCIM switch tells them all to forget what they cached (revocations and
-- disablements take effect at once on every replica, not after the cache's TTL).
CREATE FUNCTION scim_auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scim_auth', '');
    RETURN NULL;
END $$;

-- Not on last_used_at: authentication itself writes that (about once a minute per token).
CREATE TRIGGER scim_tokens_auth_notify
AFTER UPDATE OF revoked_at, expires_at, digest, org_id OR DELETE ON scim_tokens
FOR EACH STATEMENT EXECUTE FUNCTION scim_auth_notify();

CREATE TRIGGER organizations_auth_notify
AFTER UPDATE OF scim_enabled, id OR DELETE ON organizations
FOR EACH STATEMENT EXECUTE FUNCTION scim_auth_notify();
