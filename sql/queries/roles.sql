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
-- The effective role of each user in $2 (one statement for any number of users): the role of
-- the highest-priority mapping (first given on a tie) whose group they are in, else the
-- default. With role_source 'scim_roles': the user's SCIM `roles` (its primary value, else
-- the first), else the default. Users not of the organization are left out.
SELECT u.id AS user_id,
       coalesce(
           CASE WHEN (SELECT role_source FROM role_settings WHERE org_id = $1) = 'scim_roles' THEN
               (SELECT r ->> 'value' FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(u.attrs -> 'roles') = 'array' THEN u.attrs -> 'roles'
                         ELSE '[]'::jsonb END) WITH ORDINALITY AS x(r, n)
                WHERE r ->> 'value' IS NOT NULL
                ORDER BY (r -> 'primary') = 'true'::jsonb DESC NULLS LAST, n LIMIT 1)
           ELSE
           (SELECT m.role
            FROM group_members gm
            JOIN groups g ON g.id = gm.group_id AND g.org_id = $1
            JOIN role_mappings m ON m.org_id = $1 AND (
                   (m.match_kind = 'id' AND g.id::text = lower(m.match_value))
                OR (m.match_kind = 'displayName' AND lower(g.display_name) = lower(m.match_value))
                OR (m.match_kind = 'externalId' AND g.external_id = m.match_value))
            WHERE gm.user_id = u.id
            ORDER BY m.priority DESC, m.position
            LIMIT 1)
           END,
           (SELECT default_role FROM role_settings WHERE org_id = $1)) AS role
FROM users u
WHERE u.org_id = $1 AND u.id = ANY($2::uuid[]);
