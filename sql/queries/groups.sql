-- SCIM Groups and memberships. Every query is scoped by org_id ($1).

-- name: insert_group
INSERT INTO groups (id, org_id, attrs)
VALUES ($2, $1, $3)
RETURNING id, attrs, member_count, version, event_seq, created_at, updated_at;

-- name: get_group
SELECT id, attrs, member_count, version, event_seq, created_at, updated_at
FROM groups
WHERE org_id = $1 AND id = $2;

-- name: lock_group
-- Writers of one group are serialised by this row lock.
SELECT id, attrs, member_count, version, event_seq, created_at, updated_at
FROM groups
WHERE org_id = $1 AND id = $2
FOR UPDATE;

-- name: update_group
-- The change and its events in one statement. $3: new attrs (NULL keeps them); $4: change in
-- member count; $5: number of events written; then event_rows' nine.
WITH change AS (
    UPDATE groups
    SET attrs = coalesce($3, attrs),
        member_count = member_count + $4,
        version = version + 1,
        event_seq = event_seq + $5,
        updated_at = now()
    WHERE org_id = $1 AND id = $2
    RETURNING id, attrs, member_count, version, event_seq, created_at, updated_at
),
-- include: event_rows
SELECT * FROM change;

-- name: finish_new_group
-- A group created with its members in the same transaction: one version, its first events
-- ($4 of them; then event_rows' nine).
WITH change AS (
    UPDATE groups SET member_count = $3, event_seq = $4
    WHERE org_id = $1 AND id = $2
    RETURNING id, attrs, member_count, version, event_seq, created_at, updated_at
),
-- include: event_rows
SELECT * FROM change;

-- name: delete_group
-- The group and its group.changed "deleted" event (memberships go by cascade); then
-- event_rows' nine.
WITH change AS (
    DELETE FROM groups WHERE org_id = $1 AND id = $2
    RETURNING id
),
-- include: event_rows
SELECT * FROM change;

-- name: add_members
-- One statement for any number of members: the ids that are not users of this organization
-- come back in `missing` (skipped: the known ones are still added), the ones newly added in
-- `added`.
WITH wanted AS (
    SELECT DISTINCT x.id FROM unnest($3::uuid[]) AS x(id)
), valid AS (
    -- KEY SHARE: a user deleted by a concurrent transaction is skipped like an unknown one,
    -- not a foreign-key error at the insert.
    SELECT u.id FROM users u JOIN wanted w ON w.id = u.id WHERE u.org_id = $1
    FOR KEY SHARE OF u
), inserted AS (
    INSERT INTO group_members (group_id, user_id)
    SELECT $2, v.id FROM valid v
    WHERE EXISTS (SELECT 1 FROM groups g WHERE g.id = $2 AND g.org_id = $1)
    ON CONFLICT DO NOTHING
    RETURNING user_id
)
SELECT coalesce((SELECT array_agg(w.id) FROM wanted w WHERE w.id NOT IN (SELECT id FROM valid)), '{}') AS missing,
       coalesce((SELECT array_agg(user_id ORDER BY user_id) FROM inserted), '{}') AS added;

-- name: remove_members
-- Membership rows carry no org_id: the group's row says whose they are.
WITH d AS (
    DELETE FROM group_members gm
    USING groups g
    WHERE gm.group_id = $2 AND gm.user_id = ANY($3::uuid[]) AND g.id = gm.group_id AND g.org_id = $1
    RETURNING gm.user_id
)
SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') AS removed FROM d;

-- name: remove_all_members
WITH d AS (
    DELETE FROM group_members gm
    USING groups g
    WHERE gm.group_id = $2 AND g.id = gm.group_id AND g.org_id = $1
    RETURNING gm.user_id
)
SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') AS removed FROM d;

-- name: replace_members
-- The exact new member set in one statement: missing ids (not users of the organization:
-- skipped, and members no more), and the added/removed difference.
WITH wanted AS (
    SELECT DISTINCT x.id FROM unnest($3::uuid[]) AS x(id)
), valid AS (
    -- KEY SHARE: a user deleted by a concurrent transaction is skipped like an unknown one,
    -- not a foreign-key error at the insert.
    SELECT u.id FROM users u JOIN wanted w ON w.id = u.id WHERE u.org_id = $1
    FOR KEY SHARE OF u
), mine AS (
    SELECT g.id FROM groups g WHERE g.id = $2 AND g.org_id = $1
), removed AS (
    DELETE FROM group_members gm
    USING mine
    WHERE gm.group_id = mine.id AND gm.user_id NOT IN (SELECT id FROM valid)
    RETURNING gm.user_id
), inserted AS (
    INSERT INTO group_members (group_id, user_id)
    SELECT mine.id, v.id FROM valid v, mine
    ON CONFLICT DO NOTHING
    RETURNING user_id
)
SELECT coalesce((SELECT array_agg(w.id) FROM wanted w WHERE w.id NOT IN (SELECT id FROM valid)), '{}') AS missing,
       coalesce((SELECT array_agg(user_id ORDER BY user_id) FROM inserted), '{}') AS added,
       coalesce((SELECT array_agg(user_id ORDER BY user_id) FROM removed), '{}') AS removed;

-- name: group_members
-- One group's members (read through a cursor), with what `display` shows: the user's
-- displayName, else userName. Members are users of the group's organization ($1).
SELECT gm.user_id, coalesce(u.display_name, u.user_name) AS display
FROM group_members gm
JOIN users u ON u.id = gm.user_id
WHERE gm.group_id = $2 AND u.org_id = $1
ORDER BY gm.user_id;

-- name: members_of_groups
-- Members of a page of groups (list responses), users of the organization $1.
SELECT gm.group_id, gm.user_id, coalesce(u.display_name, u.user_name) AS display
FROM group_members gm
JOIN users u ON u.id = gm.user_id
WHERE gm.group_id = ANY($2::uuid[]) AND u.org_id = $1
ORDER BY gm.group_id, gm.user_id;

-- name: lock_user_groups
-- The groups a user is in, locked in id order, before the user is deleted.
SELECT g.id
FROM groups g
JOIN group_members gm ON gm.group_id = g.id
WHERE g.org_id = $1 AND gm.user_id = $2
ORDER BY g.id
FOR UPDATE OF g;

-- name: remove_user_from_groups
-- Deleting a user: its memberships go, and each group it left gets a new version.
WITH d AS (
    DELETE FROM group_members gm
    USING groups mine
    WHERE gm.user_id = $2 AND mine.id = gm.group_id AND mine.org_id = $1
    RETURNING gm.group_id
)
UPDATE groups g
SET member_count = member_count - 1, version = version + 1, event_seq = event_seq + 1,
    updated_at = now()
FROM d
WHERE g.id = d.group_id AND g.org_id = $1
RETURNING g.id, g.attrs, g.member_count, g.event_seq, g.version, g.created_at;

-- name: group_member_ids
-- A group's member ids (read before the group is deleted: the guard counts and keeps them).
SELECT user_id FROM group_members WHERE group_id = $1;
