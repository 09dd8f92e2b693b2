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
-- $1 xid, $2 seq (exclusive start), $3 xmin from pull_head, $4 limit, $5 types (NULL: all).
SELECT e.xid::text AS xid, e.seq, e.payload
FROM events e
WHERE (e.xid, e.seq) > ($1::text::xid8, $2::bigint)
  AND e.xid < $3::text::xid8
  AND ($5::text[] IS NULL OR e.type = ANY($5::text[]))
  AND NOT EXISTS (  -- held by the guard (guard.sql): not in the feed until released
      SELECT 1 FROM guard_holds h
      WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
ORDER BY e.xid, e.seq
LIMIT $4;

-- name: pull_org_events
-- The same for one organization ($6), on the (org_id, xid, seq) index.
SELECT e.xid::text AS xid, e.seq, e.payload
FROM events e
WHERE e.org_id = $6
  AND (e.xid, e.seq) > ($1::text::xid8, $2::bigint)
  AND e.xid < $3::text::xid8
  AND ($5::text[] IS NULL OR e.type = ANY($5::text[]))
  AND NOT EXISTS (  -- held by the guard (guard.sql): not in the feed until released
      SELECT 1 FROM guard_holds h
      WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
ORDER BY e.xid, e.seq
LIMIT $4;

-- name: snapshot_users
-- One page of an organization's users by id (keyset), each with the resourceversion of its
-- latest event (`event_seq`). A user the guard holds is shown as it was before its first held
-- change (its image), at the version consumers have: what the feed will deliver next is
-- exactly what is held.
SELECT id, attrs, setup_state, event_seq FROM (
    SELECT u.id, u.attrs, u.setup_state, u.event_seq
    FROM users u
    WHERE u.org_id = $1 AND ($2::uuid IS NULL OR u.id > $2::uuid)
      AND NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.subject = u.id)
    UNION ALL
    SELECT h.subject, h.image -> 'attrs', h.image ->> 'setup_state', h.first_version - 1
    FROM guard_holds h
    WHERE h.org_id = $1 AND h.resource_type = 'User' AND ($2::uuid IS NULL OR h.subject > $2::uuid)
) s
ORDER BY id
LIMIT $3;

-- name: snapshot_groups
SELECT id, display_name, external_id, event_seq, member_count FROM (
    SELECT g.id, g.display_name, g.external_id, g.event_seq, g.member_count
    FROM groups g
    WHERE g.org_id = $1 AND ($2::uuid IS NULL OR g.id > $2::uuid)
      AND NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.subject = g.id)
    UNION ALL
    SELECT h.subject, h.image -> 'attrs' ->> 'displayName', h.image -> 'attrs' ->> 'externalId',
           h.first_version - 1, (h.image ->> 'member_count')::integer
    FROM guard_holds h
    WHERE h.org_id = $1 AND h.resource_type = 'Group' AND ($2::uuid IS NULL OR h.subject > $2::uuid)
) s
ORDER BY id
LIMIT $3;

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
