-- Scoped admin credentials (issue 22). See scim_service/provisioning/credentials.py.

-- name: credential_insert
INSERT INTO admin_credentials (digest, display_prefix, scope, org_ids, event_types, description,
                               expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, display_prefix, scope, org_ids, event_types, description, created_at, expires_at,
          last_used_at, revoked_at, 'active' AS state;

-- name: credential_list
SELECT id, display_prefix, scope, org_ids, event_types, description, created_at, expires_at,
       last_used_at, revoked_at,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at <= now() THEN 'expired'
            ELSE 'active' END AS state
FROM admin_credentials
ORDER BY created_at, id;

-- name: credential_revoke
-- Revoking twice keeps the first revocation time.
UPDATE admin_credentials SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1
RETURNING id, display_prefix, scope, org_ids, event_types, description, created_at, expires_at,
          last_used_at, revoked_at, 'revoked' AS state;

-- name: credential_lookup
SELECT id, display_prefix, scope, org_ids, event_types, expires_at, revoked_at,
       (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds') AS stale_use,
       now() AS db_now
FROM admin_credentials
WHERE digest = $1;

-- name: credential_touch
-- last_used_at is written at most about once a minute per credential.
UPDATE admin_credentials SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds');

-- name: orgs_exist
-- Which of the organizations $1 exist.
SELECT id FROM organizations WHERE id = ANY($1::uuid[]);
