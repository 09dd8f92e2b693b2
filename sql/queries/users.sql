-- SCIM Users. Every query is scoped by org_id ($1), taken from the caller's token.

-- name: insert_user
INSERT INTO users (id, org_id, attrs)
VALUES ($2, $1, $3)
RETURNING id, attrs, setup_state, setup_completed_at, version, created_at, updated_at;

-- name: get_user
SELECT id, attrs, setup_state, setup_completed_at, version, created_at, updated_at
FROM users
WHERE org_id = $1 AND id = $2;

-- name: lock_user
-- Writers of one user are serialised by this row lock (see DESIGN: resource versions).
SELECT id, attrs, setup_state, setup_completed_at, version, created_at, updated_at
FROM users
WHERE org_id = $1 AND id = $2
FOR UPDATE;

-- name: update_user_attrs
UPDATE users
SET attrs = $3, version = version + 1, updated_at = now()
WHERE org_id = $1 AND id = $2
RETURNING id, attrs, setup_state, setup_completed_at, version, created_at, updated_at;

-- name: delete_user
DELETE FROM users WHERE org_id = $1 AND id = $2
RETURNING id;

-- name: complete_user_setup
UPDATE users
SET setup_state = 'complete', setup_completed_at = now(), version = version + 1, updated_at = now()
WHERE org_id = $1 AND id = $2 AND setup_state = 'pending'
RETURNING id, attrs, setup_state, setup_completed_at, version, created_at, updated_at;
