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
ORDER BY e.xid, e.seq
LIMIT $4;

-- name: snapshot_users
-- One page of an organization's users by id (keyset), each with the resourceversion of its
-- latest event (`event_seq`).
SELECT id, attrs, setup_state, event_seq
FROM users
WHERE org_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid)
ORDER BY id
LIMIT $3;

-- name: snapshot_groups
SELECT g.id, g.display_name, g.external_id, g.event_seq, g.member_count
FROM groups g
WHERE g.org_id = $1 AND ($2::uuid IS NULL OR g.id > $2::uuid)
ORDER BY g.id
LIMIT $3;

-- name: snapshot_group
SELECT id, event_seq FROM groups WHERE org_id = $1 AND id = $2;

-- name: snapshot_members
SELECT gm.user_id
FROM group_members gm
WHERE gm.group_id = $1 AND ($2::uuid IS NULL OR gm.user_id > $2::uuid)
ORDER BY gm.user_id
LIMIT $3;
