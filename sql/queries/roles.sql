-- Role mappings per organization (issue 25). Every query is scoped by org_id ($1).

-- name: role_settings
SELECT default_role, role_source, updated_at FROM role_settings WHERE org_id = $1;

-- name: role_mappings
-- The mappings in the order they were given, each with the group it names now (if any).
SELECT m.position, m.match_kind, m.match_value, m.role, m.priority,
       g.id AS group_id, g.display_name AS group_display_name, g.member_count
FROM role_mappings m
LEFT JOIN groups g ON g.org_id = m.org_id AND (
       (m.match_kind = 'id' AND g.id::text = lower(m.match_value))
    OR (m.match_kind = 'displayName' AND lower(g.display_name) = lower(m.match_value))
    OR (m.match_kind = 'externalId' AND g.external_id = m.match_value))
WHERE m.org_id = $1
ORDER BY m.position;

-- name: lock_role_settings
-- Writers of one organization's mappings are serialised by this row (created if absent).
INSERT INTO role_settings (org_id) SELECT id FROM organizations WHERE id = $1
ON CONFLICT (org_id) DO UPDATE SET org_id = excluded.org_id
RETURNING org_id;

-- name: update_role_settings
UPDATE role_settings SET default_role = $2, role_source = $3, updated_at = now()
WHERE org_id = $1;

-- name: delete_role_mappings
DELETE FROM role_mappings WHERE org_id = $1;

-- name: insert_role_mappings
-- The mappings as parallel arrays (position, kind, value, role, priority): one statement.
INSERT INTO role_mappings (org_id, position, match_kind, match_value, role, priority)
SELECT $1, m.position, m.kind, m.value, m.role, m.priority
FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::int[])
     AS m(position, kind, value, role, priority);

-- name: effective_roles
-- The effective role of each user in $2, of every member of group $3 (NULL: none), or ($4) of
-- every user of the organization, in one
-- statement for any number of users: the role of the highest-priority mapping (first given on
-- a tie) whose group they are in, else the default; `rank` is that mapping's priority (NULL
-- for the default: below every mapping), so a lowered role is one of lower rank. With
-- role_source 'scim_roles': the user's SCIM `roles` (its primary value, else the first), else
-- the default. Users not of the organization are left out.
WITH s AS (
    SELECT default_role, role_source FROM role_settings WHERE org_id = $1
)
SELECT u.id AS user_id,
       coalesce(CASE WHEN (SELECT role_source FROM s) = 'scim_roles' THEN sr.role
                     ELSE gr.role END,
                (SELECT default_role FROM s)) AS role,
       CASE WHEN (SELECT role_source FROM s) = 'scim_roles' THEN NULL ELSE gr.rank END AS rank,
       coalesce((SELECT role_source FROM s), 'groups') AS source,
       (SELECT default_role FROM s) AS default_role
FROM users u
LEFT JOIN LATERAL (
    SELECT m.role, m.priority AS rank
    FROM group_members gm
    JOIN groups g ON g.id = gm.group_id AND g.org_id = $1
    JOIN role_mappings m ON m.org_id = $1 AND (
           (m.match_kind = 'id' AND g.id::text = lower(m.match_value))
        OR (m.match_kind = 'displayName' AND lower(g.display_name) = lower(m.match_value))
        OR (m.match_kind = 'externalId' AND g.external_id = m.match_value))
    WHERE gm.user_id = u.id
    ORDER BY m.priority DESC, m.position
    LIMIT 1
) AS gr ON (SELECT role_source FROM s) IS DISTINCT FROM 'scim_roles'
LEFT JOIN LATERAL (
    SELECT x.r ->> 'value' AS role
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(u.attrs -> 'roles') = 'array'
                                   THEN u.attrs -> 'roles' ELSE '[]'::jsonb END)
         WITH ORDINALITY AS x(r, n)
    WHERE x.r ->> 'value' IS NOT NULL
    ORDER BY (x.r -> 'primary') = 'true'::jsonb DESC NULLS LAST, x.n
    LIMIT 1
) AS sr ON (SELECT role_source FROM s) = 'scim_roles'
WHERE u.org_id = $1
  AND (u.id = ANY($2::uuid[])
       OR ($3::uuid IS NOT NULL AND u.id IN (SELECT user_id FROM group_members WHERE group_id = $3))
       OR $4::boolean);

-- name: group_is_mapped
-- Whether a mapping names group $2 under any of the display names $3 (lower case) or external
-- ids $4 (its names before and after a change), in an organization whose roles come from
-- groups. False (one cheap probe) for every group of an organization without mappings.
SELECT EXISTS (
    SELECT 1 FROM role_mappings m
    WHERE m.org_id = $1
      AND ((m.match_kind = 'id' AND m.match_value = $2::text)
           OR (m.match_kind = 'displayName' AND lower(m.match_value) = ANY($3::text[]))
           OR (m.match_kind = 'externalId' AND m.match_value = ANY($4::text[])))
      AND coalesce((SELECT role_source FROM role_settings s WHERE s.org_id = $1), 'groups')
          = 'groups'
);

-- name: bump_user_events
-- Users whose effective role changed get one more event each ($2), in one statement, under
-- their row locks (taken by this UPDATE); the new event_seq numbers those events (their rows
-- are read next, by users_by_id, through a cursor).
UPDATE users SET event_seq = event_seq + 1
WHERE org_id = $1 AND id = ANY($2::uuid[]);

-- name: users_by_id
SELECT id, attrs, setup_state, setup_completed_at, version, event_seq, created_at, updated_at
FROM users
WHERE org_id = $1 AND id = ANY($2::uuid[])
ORDER BY id;
