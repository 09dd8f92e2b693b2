-- The mass-deprovisioning guard. See scim_service/provisioning/guard.py for the rules and
-- sql/migrations/0010_guard_holds.sql for the tables.
--
-- Lock order, the same for everyone: resources' row locks (groups in id order, then users),
-- then the organization's row lock, then hold rows. A writer takes its resources' row locks,
-- then (for an access-reducing change) the organization's, then (inserting events, in the
-- event position trigger) a share lock on each of its resources' hold rows. A decision reads
-- the holds, locks their resources (guard_lock_groups, guard_lock_users), then the
-- organization, then the holds (FOR UPDATE); if a hold appeared meanwhile it starts again. The
-- automatic release of staged holds changes no resource row: it takes the organization's lock
-- and the holds only.

-- name: guard_lock_org
-- Taken by every access-reducing transaction, after its resources' row locks and before its
-- events: the organization's reductions are counted and the guard trips exactly once. NO KEY
-- UPDATE does not conflict with the KEY SHARE locks that inserting users and tokens take.
SELECT guard_enabled, guard_percent, guard_min_users, guard_window_minutes,
       guard_tripped_at, guard_reset_at
FROM organizations WHERE id = $1
FOR NO KEY UPDATE;

-- name: guard_record_reductions
-- One row per user who lost access in this transaction ($2 users, $3 deprovisioned or not).
INSERT INTO guard_reductions (org_id, user_id, deprovisioned)
SELECT $1, u, d FROM unnest($2::uuid[], $3::bool[]) AS r(u, d);

-- name: guard_count_reductions
-- Distinct users who lost access since $2 (this transaction's included), and how many of them
-- were deprovisioned (no longer active: they belong to the base of the percentage).
SELECT count(DISTINCT user_id) AS affected,
       count(DISTINCT user_id) FILTER (WHERE deprovisioned) AS deprovisioned
FROM guard_reductions
WHERE org_id = $1 AND at >= $2;

-- name: guard_count_active
SELECT count(*) FROM users WHERE org_id = $1 AND active;

-- name: guard_hold
-- Hold resources from their first version written by this transaction: $2 subjects, $3 types,
-- $4 first versions, $5 images (the resources before this transaction), $6 release time (a
-- staged hold) or NULL. A resource already held keeps its hold (and its older image).
INSERT INTO guard_holds (subject, org_id, resource_type, first_version, image, release_at)
SELECT s, $1, t, v, i::jsonb, $6
FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::text[]) AS h(s, t, v, i)
ON CONFLICT (subject) DO NOTHING
RETURNING subject;

-- name: guard_hold_members
-- A newly held group's members before this transaction: its members now, less those this
-- transaction added ($2), plus those it removed ($3).
INSERT INTO guard_hold_members (group_id, user_id)
SELECT $1::uuid, gm.user_id FROM group_members gm
WHERE gm.group_id = $1 AND gm.user_id <> ALL ($2::uuid[])
UNION
SELECT $1::uuid, r FROM unnest($3::uuid[]) AS r
ON CONFLICT DO NOTHING;

-- name: guard_hold_member_count
-- Keep the held group's member count in its image (snapshots show it).
UPDATE guard_holds
SET image = image || jsonb_build_object(
    'member_count', (SELECT count(*) FROM guard_hold_members WHERE group_id = $1))
WHERE subject = $1;

-- name: guard_hold_outbox
-- The deliveries of this transaction's events ($1 event ids) are held: never due, so no
-- publisher of any release claims them; they hold back their resources' later versions.
UPDATE outbox o SET held = true, next_attempt_at = 'infinity'
FROM events e
WHERE e.id = ANY ($1::uuid[]) AND o.event_seq = e.seq AND NOT o.dead;

-- name: guard_trip
-- The guard trips: staged holds of the organization now wait for a decision.
WITH t AS (
    UPDATE organizations
    SET guard_tripped_at = now(), guard_trip_count = $2, guard_trip_base = $3,
        event_seq = event_seq + 1
    WHERE id = $1
    RETURNING event_seq, guard_tripped_at
), staged AS (
    UPDATE guard_holds SET release_at = NULL WHERE org_id = $1 AND release_at IS NOT NULL
)
SELECT event_seq, guard_tripped_at FROM t;

-- name: guard_state
SELECT o.id, o.name, o.guard_enabled, o.guard_percent, o.guard_min_users,
       o.guard_window_minutes, o.guard_tripped_at, o.guard_trip_count, o.guard_trip_base,
       o.guard_reset_at,
       d.action AS last_action, d.at AS last_at, d.resources AS last_resources,
       d.events AS last_events
FROM organizations o
LEFT JOIN LATERAL (
    SELECT action, at, resources, events FROM guard_decisions
    WHERE org_id = o.id ORDER BY id DESC LIMIT 1
) d ON true
WHERE o.id = $1;

-- name: guard_held
-- The held events of an organization, in delivery order.
SELECT e.id, e.type, e.resource_type, e.subject, e.resource_version, e.time, e.payload,
       h.release_at
FROM guard_holds h
JOIN events e ON e.subject = h.subject AND e.resource_version >= h.first_version
WHERE h.org_id = $1
ORDER BY e.seq
LIMIT $2;

-- name: guard_held_count
SELECT count(*) AS events, count(DISTINCT h.subject) AS resources
FROM guard_holds h
JOIN events e ON e.subject = h.subject AND e.resource_version >= h.first_version
WHERE h.org_id = $1;

-- name: guard_peek_holds
SELECT subject, resource_type FROM guard_holds WHERE org_id = $1;

-- name: guard_lock_groups
SELECT id FROM groups WHERE id = ANY ($1::uuid[]) ORDER BY id FOR UPDATE;

-- name: guard_lock_users
SELECT id FROM users WHERE id = ANY ($1::uuid[]) ORDER BY id FOR UPDATE;

-- name: guard_lock_holds
-- A decision's first statement: the holds it decides ($2 NULL: all of the organization's; else
-- those due by $2 — the staged ones), locked. It waits for any writer still inserting an event
-- of a held resource (the trigger's share lock), so the statements after it see that event.
SELECT h.subject, h.resource_type, h.first_version, h.image,
       (SELECT count(*) FROM events e
        WHERE e.subject = h.subject AND e.resource_version >= h.first_version) AS held_events
FROM guard_holds h
WHERE h.org_id = $1 AND ($2::timestamptz IS NULL OR h.release_at <= $2)
ORDER BY h.subject
FOR UPDATE OF h;

-- name: guard_release_events
-- The held events of these resources ($1 subjects, $2 first versions) move to this
-- transaction's position in the pull order: after every cursor handed out before it commits,
-- in version order per resource (seq order, among themselves).
UPDATE events e SET xid = pg_current_xact_id()
FROM unnest($1::uuid[], $2::bigint[]) AS h(s, v)
WHERE e.subject = h.s AND e.resource_version >= h.v;

-- name: guard_release_outbox
-- Their deliveries are handed back, due now: the claim's per-resource rule delivers them (and
-- whatever waits behind them) in version order.
UPDATE outbox SET held = false, next_attempt_at = now()
WHERE held AND subject = ANY ($1::uuid[])
RETURNING event_seq;

-- name: guard_drop_holds
DELETE FROM guard_holds WHERE subject = ANY ($1::uuid[]);

-- name: guard_name_conflicts
-- Before a rejection: resources whose name in the image is now taken by another resource of
-- the organization (a user re-created with the same userName while held, ...).
SELECT h.resource_type, h.subject, h.image -> 'attrs' ->> CASE h.resource_type
           WHEN 'User' THEN 'userName' ELSE 'displayName' END AS name
FROM guard_holds h
WHERE h.org_id = $1 AND h.subject = ANY ($2::uuid[])
  AND CASE h.resource_type
      WHEN 'User' THEN EXISTS (
          SELECT 1 FROM users u
          WHERE u.org_id = $1 AND u.id <> h.subject
            AND lower(u.user_name) = lower(h.image -> 'attrs' ->> 'userName')
            AND u.id <> ALL ($2::uuid[]))
      ELSE EXISTS (
          SELECT 1 FROM groups g
          WHERE g.org_id = $1 AND g.id <> h.subject
            AND lower(g.display_name) = lower(h.image -> 'attrs' ->> 'displayName')
            AND g.id <> ALL ($2::uuid[]))
      END;

-- name: guard_restore_users
-- A rejection restores the held users to their images: those that still exist are updated,
-- those deleted are inserted again with their id. The next event of each takes the first held
-- version again ($4 - 1 is what consumers have); the SCIM version moves past every version the
-- user had while held ($5: its held events, one at least per write).
WITH h AS (
    SELECT s, v, i::jsonb AS i, n
    FROM unnest($2::uuid[], $4::bigint[], $3::text[], $5::bigint[]) AS h(s, v, i, n)
), upd AS (
    UPDATE users u
    SET attrs = h.i -> 'attrs',
        setup_state = h.i ->> 'setup_state',
        setup_completed_at = (h.i ->> 'setup_completed_at')::timestamptz,
        version = u.version + 1,
        event_seq = h.v - 1,
        updated_at = now()
    FROM h
    WHERE u.id = h.s AND u.org_id = $1
    RETURNING u.id
)
INSERT INTO users (id, org_id, attrs, setup_state, setup_completed_at, version, event_seq,
                   created_at)
SELECT h.s, $1, h.i -> 'attrs', h.i ->> 'setup_state', (h.i ->> 'setup_completed_at')::timestamptz,
       (h.i ->> 'version')::bigint + h.n + 1, h.v - 1, (h.i ->> 'created_at')::timestamptz
FROM h
WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = h.s)
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = h.s);

-- name: guard_restore_groups
-- The same for held groups; their members follow (guard_restore_members).
WITH h AS (
    SELECT s, v, i::jsonb AS i, n
    FROM unnest($2::uuid[], $4::bigint[], $3::text[], $5::bigint[]) AS h(s, v, i, n)
), upd AS (
    UPDATE groups g
    SET attrs = h.i -> 'attrs',
        member_count = (h.i ->> 'member_count')::integer,
        version = g.version + 1,
        event_seq = h.v - 1,
        updated_at = now()
    FROM h
    WHERE g.id = h.s AND g.org_id = $1
    RETURNING g.id
)
INSERT INTO groups (id, org_id, attrs, member_count, version, event_seq, created_at)
SELECT h.s, $1, h.i -> 'attrs', (h.i ->> 'member_count')::integer,
       (h.i ->> 'version')::bigint + h.n + 1, h.v - 1,
       coalesce((h.i ->> 'created_at')::timestamptz, now())
FROM h
WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = h.s)
  AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = h.s);

-- name: guard_clear_members
DELETE FROM group_members WHERE group_id = ANY ($1::uuid[]);

-- name: guard_restore_members
-- Held groups ($1) get their members back as in their images (every member that was deleted
-- while held was held too, and is restored by now).
INSERT INTO group_members (group_id, user_id)
SELECT m.group_id, m.user_id
FROM guard_hold_members m JOIN users u ON u.id = m.user_id
WHERE m.group_id = ANY ($1::uuid[]);

-- name: guard_drop_events
-- A rejection deletes the held events (never seen by any consumer) and their deliveries.
WITH h AS (
    SELECT s, v FROM unnest($1::uuid[], $2::bigint[]) AS h(s, v)
), o AS (
    DELETE FROM outbox o USING h WHERE o.subject = h.s AND o.resource_version >= h.v
)
DELETE FROM events e USING h WHERE e.subject = h.s AND e.resource_version >= h.v
RETURNING e.seq;

-- name: guard_reset
-- Re-arm: reductions before now no longer count toward the next trip.
UPDATE organizations
SET guard_tripped_at = NULL, guard_trip_count = NULL, guard_trip_base = NULL,
    guard_reset_at = now()
WHERE id = $1;

-- name: guard_decided
-- Record a decision (and number its directory event from the organization's counter).
WITH d AS (
    INSERT INTO guard_decisions (org_id, action, tripped_at, resources, events)
    VALUES ($1, $2, $3, $4, $5)
    RETURNING at
), o AS (
    UPDATE organizations SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq
)
SELECT o.event_seq, d.at FROM o, d;

-- name: guard_due_orgs
-- Organizations, not tripped, with staged holds due now (the publisher releases them).
SELECT DISTINCT h.org_id
FROM guard_holds h JOIN organizations o ON o.id = h.org_id
WHERE h.release_at <= now() AND o.guard_tripped_at IS NULL
LIMIT $1;

-- name: guard_prune_reductions
DELETE FROM guard_reductions WHERE at < now() - interval '8 days';

-- name: guard_configure
-- Per-organization overrides; $6 true clears them all (back to the process settings).
UPDATE organizations
SET guard_enabled = CASE WHEN $6 THEN NULL ELSE coalesce($2, guard_enabled) END,
    guard_percent = CASE WHEN $6 THEN NULL ELSE coalesce($3, guard_percent) END,
    guard_min_users = CASE WHEN $6 THEN NULL ELSE coalesce($4, guard_min_users) END,
    guard_window_minutes = CASE WHEN $6 THEN NULL ELSE coalesce($5, guard_window_minutes) END
WHERE id = $1
RETURNING id;

-- name: guard_tripped_orgs
SELECT count(*) FROM organizations WHERE guard_tripped_at IS NOT NULL;
