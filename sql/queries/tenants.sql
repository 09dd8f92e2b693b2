-- Organizations and SCIM tokens. Named blocks (`-- name: x`), $n parameters only.

-- name: insert_org
INSERT INTO organizations (id, name, scim_enabled)
VALUES (coalesce($1::uuid, gen_random_uuid()), $2, $3)
RETURNING id, name, scim_enabled, created_at;

-- name: list_orgs
SELECT o.id, o.name, o.scim_enabled, o.created_at,
       (SELECT count(*) FROM scim_tokens t
         WHERE t.org_id = o.id AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_tokens
FROM organizations o
ORDER BY o.created_at, o.id;

-- name: get_org
SELECT o.id, o.name, o.scim_enabled, o.created_at,
       (SELECT count(*) FROM scim_tokens t
         WHERE t.org_id = o.id AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_tokens
FROM organizations o
WHERE o.id = $1;

-- name: set_org_scim_enabled
UPDATE organizations SET scim_enabled = $2 WHERE id = $1
RETURNING id;

-- name: count_orgs
SELECT count(*) FROM organizations;

-- name: lock_org_bootstrap
-- Serialises first-run bootstrap between processes sharing one database.
SELECT pg_advisory_xact_lock(7264001);

-- name: insert_token
INSERT INTO scim_tokens (org_id, digest, display_prefix, description, expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, org_id, display_prefix, description, created_at, expires_at, last_used_at, revoked_at,
          'active' AS state;

-- name: list_tokens
SELECT id, org_id, display_prefix, description, created_at, expires_at, last_used_at, revoked_at,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at <= now() THEN 'expired'
            ELSE 'active' END AS state
FROM scim_tokens
WHERE org_id = $1
ORDER BY created_at, id;

-- name: revoke_token
-- Revoking twice keeps the first revocation time.
UPDATE scim_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1
RETURNING id, org_id, display_prefix, description, created_at, expires_at, last_used_at, revoked_at,
          'revoked' AS state;

-- name: token_org
SELECT org_id FROM scim_tokens WHERE id = $1;

-- name: authenticate_token
SELECT t.id AS token_id, t.org_id, t.expires_at, t.revoked_at, t.last_used_at,
       o.scim_enabled, now() AS db_now
FROM scim_tokens t
JOIN organizations o ON o.id = t.org_id
WHERE t.digest = $1;

-- name: touch_token
-- last_used_at is written at most about once a minute per token, never on every request.
UPDATE scim_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds');

-- name: db_now
-- The database's clock: a new token's expiry counts from the time its rows are stamped with.
SELECT now();
