-- SCIM Users. Every query is scoped by org_id ($1), taken from the caller's token.

-- name: insert_user_with_events
-- POST /Users in one statement (one round trip, one implicit transaction): the user, its
-- provisioning event and the event's outbox rows. $4: how many events; then event_rows' nine.
WITH change AS (
    INSERT INTO users (id, org_id, attrs, event_seq)
    VALUES ($2, $1, $3, $4)
    RETURNING id, attrs, setup_state, setup_completed_at, version, event_seq, created_at, updated_at
),
-- include: event_rows
SELECT * FROM change;

-- name: get_user
SELECT id, attrs, setup_state, setup_completed_at, version, event_seq, created_at, updated_at
FROM users
WHERE org_id = $1 AND id = $2;

-- name: get_user_with_groups
-- The user and its read-only `groups` ([id, displayName] pairs) in one round trip.
SELECT u.id, u.attrs, u.setup_state, u.setup_completed_at, u.version, u.event_seq, u.created_at, u.updated_at,
       (SELECT jsonb_agg(jsonb_build_array(g.id, g.display_name) ORDER BY g.display_name, g.id)
        FROM group_members gm JOIN groups g ON g.id = gm.group_id
        WHERE gm.user_id = u.id AND g.org_id = u.org_id) AS groups
FROM users u
WHERE u.org_id = $1 AND u.id = $2;

-- name: lock_user
-- Writers of one user are serialised by this row lock (see DESIGN: resource versions).
SELECT id, attrs, setup_state, setup_completed_at, version, event_seq, created_at, updated_at
FROM users
WHERE org_id = $1 AND id = $2
FOR UPDATE;

-- name: update_user_attrs
-- New attributes and their events in one statement. $4: how many events this change writes
-- (they take the next numbers of event_seq); then event_rows' nine.
WITH change AS (
    UPDATE users
    SET attrs = $3, version = version + 1, event_seq = event_seq + $4, updated_at = now()
    WHERE org_id = $1 AND id = $2
    RETURNING id, attrs, setup_state, setup_completed_at, version, event_seq, created_at, updated_at
),
-- include: event_rows
SELECT * FROM change;

-- name: delete_user
DELETE FROM users WHERE org_id = $1 AND id = $2
RETURNING id;

-- name: complete_user_setup
UPDATE users
SET setup_state = 'complete', setup_completed_at = now(), version = version + 1,
    event_seq = event_seq + 1, updated_at = now()
WHERE org_id = $1 AND id = $2 AND setup_state = 'pending'
RETURNING id, attrs, setup_state, setup_completed_at, version, event_seq, created_at, updated_at;

-- name: groups_of_users
-- The read-only `groups` of a page of users of the organization $1.
SELECT gm.user_id, g.id AS group_id, g.display_name
FROM group_members gm
JOIN groups g ON g.id = gm.group_id
WHERE gm.user_id = ANY($2::uuid[]) AND g.org_id = $1
ORDER BY g.display_name, g.id;
