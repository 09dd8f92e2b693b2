-- The pull API and the bootstrap snapshot (issue 13). Positions are (xid, seq): the writing
-- transaction's id, then the event's sequence number. See store/pull.py for the argument.
-- xid8 values travel as text (asyncpg has no codec for xid8).

-- name: pull_head
-- In the reader's REPEATABLE READ transaction, first: the snapshot's xmin (every transaction
-- below it is finished, every future one is above it), the oldest position still available
-- (the highest one retention deleted, if any), and whether committed events are held back
-- behind an older transaction still running (then the reader asks again soon).
SELECT h.xmin::text AS xmin,
       p.xid::text AS purged_xid,
       p.seq AS purged_seq,
       EXISTS (SELECT 1 FROM events e WHERE e.xid >= h.xmin) AS held_back
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) h
LEFT JOIN events_purged p ON true;

-- name: pull_events
-- $1 xid, $2 seq (exclusive start), $3 xmin from pull_head, $4 limit, $5 types (NULL: all),
-- $6 xid, $7 seq: the last position to serve ("until", inclusive; NULL: no bound).
SELECT e.xid::text AS xid, e.seq, e.payload
FROM events e
WHERE (e.xid, e.seq) > ($1::text::xid8, $2::bigint)
  AND e.xid < $3::text::xid8
  AND ($6::text IS NULL OR (e.xid, e.seq) <= ($6::text::xid8, $7::bigint))
  AND ($5::text[] IS NULL OR e.type = ANY($5::text[]))
  AND NOT EXISTS (  -- held by the guard (guard.sql): not in the feed until released
      SELECT 1 FROM guard_holds h
      WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
ORDER BY e.xid, e.seq
LIMIT $4;

-- name: pull_org_events
-- The same for one organization ($8), on the (org_id, xid, seq) index.
SELECT e.xid::text AS xid, e.seq, e.payload
FROM events e
WHERE e.org_id = $8
  AND (e.xid, e.seq) > ($1::text::xid8, $2::bigint)
  AND e.xid < $3::text::xid8
  AND ($6::text IS NULL OR (e.xid, e.seq) <= ($6::text::xid8, $7::bigint))
  AND ($5::text[] IS NULL OR e.type = ANY($5::text[]))
  AND NOT EXISTS (  -- held by the guard (guard.sql): not in the feed until released
      SELECT 1 FROM guard_holds h
      WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
ORDER BY e.xid, e.seq
LIMIT $4;

-- name: user_versions
-- Not a statement: an organization's users ($1) as consumers have them, each with the
-- resourceversion of its latest event (`event_seq`), ids above $2 (NULL: all). A user the guard
-- holds is shown as it was before its first held change (its image), at the version consumers
-- have: what the feed will deliver next is exactly what is held. The snapshot pages and the
-- digest include it, so both agree by construction.
    SELECT u.id, u.attrs, u.setup_state, u.event_seq
    FROM users u
    WHERE u.org_id = $1 AND ($2::uuid IS NULL OR u.id > $2::uuid)
      AND NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.subject = u.id)
    UNION ALL
    SELECT h.subject, h.image -> 'attrs', h.image ->> 'setup_state', h.first_version - 1
    FROM guard_holds h
    WHERE h.org_id = $1 AND h.resource_type = 'User' AND ($2::uuid IS NULL OR h.subject > $2::uuid)

-- name: group_versions
-- Not a statement: the same for groups (held ones as before their first held change).
    SELECT g.id, g.display_name, g.external_id, g.event_seq, g.member_count
    FROM groups g
    WHERE g.org_id = $1 AND ($2::uuid IS NULL OR g.id > $2::uuid)
      AND NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.subject = g.id)
    UNION ALL
    SELECT h.subject, h.image -> 'attrs' ->> 'displayName', h.image -> 'attrs' ->> 'externalId',
           h.first_version - 1, (h.image ->> 'member_count')::integer
    FROM guard_holds h
    WHERE h.org_id = $1 AND h.resource_type = 'Group' AND ($2::uuid IS NULL OR h.subject > $2::uuid)

-- name: snapshot_users
-- One page of an organization's users by id (keyset): the organization, the last id of the
-- previous page (NULL: the first page), the page size. (No parameter numbers in the comments
-- of a statement with an include: the loader numbers the fragment after the highest one.)
SELECT id, attrs, setup_state, event_seq FROM (
-- include: user_versions
) s
ORDER BY id
LIMIT $3;

-- name: snapshot_groups
SELECT id, display_name, external_id, event_seq, member_count FROM (
-- include: group_versions
) s
ORDER BY id
LIMIT $3;

-- name: org_digest
-- The state digest of an organization: the hex SHA-256 of the lines "User <id> <version>\n"
-- and "Group <id> <version>\n" of every user and group the snapshot shows, sorted bytewise
-- (COLLATE "C"), concatenated. Parameters: the organization, NULL, the organization, NULL
-- (each fragment's organization and "ids above", unused here).
SELECT encode(sha256(convert_to(coalesce(string_agg(line, '' ORDER BY line COLLATE "C"), ''),
                                'UTF8')), 'hex') AS digest,
       count(*) FILTER (WHERE kind = 'User') AS users,
       count(*) FILTER (WHERE kind = 'Group') AS groups
FROM (
    SELECT 'User' AS kind, 'User ' || u.id::text || ' ' || u.event_seq::text || E'\n' AS line
    FROM (
-- include: user_versions
    ) u
    UNION ALL
    SELECT 'Group', 'Group ' || g.id::text || ' ' || g.event_seq::text || E'\n'
    FROM (
-- include: group_versions
    ) g
) lines;

-- name: snapshot_group
-- The group (as held, if held: `held`) and its resourceversion.
SELECT h.subject AS id, h.first_version - 1 AS event_seq, true AS held
FROM guard_holds h
WHERE h.org_id = $1 AND h.subject = $2 AND h.resource_type = 'Group'
UNION ALL
SELECT g.id, g.event_seq, false
FROM groups g
WHERE g.org_id = $1 AND g.id = $2
  AND NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.subject = g.id);

-- name: snapshot_members
SELECT gm.user_id
FROM group_members gm
WHERE gm.group_id = $1 AND ($2::uuid IS NULL OR gm.user_id > $2::uuid)
ORDER BY gm.user_id
LIMIT $3;

-- name: snapshot_held_members
-- A held group's members as they were before its first held change.
SELECT m.user_id
FROM guard_hold_members m
WHERE m.group_id = $1 AND ($2::uuid IS NULL OR m.user_id > $2::uuid)
ORDER BY m.user_id
LIMIT $3;
