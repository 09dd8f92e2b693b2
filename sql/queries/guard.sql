-- The mass-deprovisioning guard. See scim_service/provisioning/guard.py.

-- name: guard_lock_org
-- Taken by every transaction that deprovisions a user, after the user's row lock: the
-- organization's deprovisions are counted and the guard trips exactly once. NO KEY UPDATE does
-- not conflict with the KEY SHARE locks that inserting users and tokens take.
SELECT guard_enabled, guard_percent, guard_min_users, guard_window_minutes,
       guard_tripped_at, guard_reset_at
FROM organizations WHERE id = $1
FOR NO KEY UPDATE;

-- name: guard_count_deprovisioned
-- Distinct users deprovisioned since $2 ($2 > window start, or the last release); this
-- transaction's own event included.
SELECT count(DISTINCT subject) FROM events
WHERE org_id = $1 AND type = 'user.deprovisioned' AND time >= $2;

-- name: guard_count_active
SELECT count(*) FROM users WHERE org_id = $1 AND active;

-- name: guard_hold_events
-- Hold the deliveries (every sink) of the organization's deprovisions still queued: the given
-- events of this transaction, or (at the trip, $2 NULL) all of them.
UPDATE outbox o SET held = true
FROM events e
WHERE e.seq = o.event_seq AND e.org_id = $1 AND e.type = 'user.deprovisioned'
  AND NOT o.held AND NOT o.dead
  AND ($2::uuid[] IS NULL OR e.subject = ANY($2::uuid[]))
  AND ($3::bigint[] IS NULL OR e.resource_version = ANY($3::bigint[]));

-- name: guard_trip
UPDATE organizations
SET guard_tripped_at = now(), guard_trip_count = $2, guard_trip_base = $3,
    event_seq = event_seq + 1
WHERE id = $1
RETURNING event_seq, guard_tripped_at;

-- name: guard_state
SELECT id, name, guard_enabled, guard_percent, guard_min_users, guard_window_minutes,
       guard_tripped_at, guard_trip_count, guard_trip_base, guard_reset_at
FROM organizations WHERE id = $1;

-- name: guard_held
-- The held deliveries of an organization, in delivery order (one row per event).
SELECT e.id, e.subject, e.resource_version, e.time, e.payload,
       array_agg(o.sink ORDER BY o.sink) AS sinks
FROM outbox o JOIN events e ON e.seq = o.event_seq
WHERE o.held AND e.org_id = $1
GROUP BY e.seq
ORDER BY e.seq
LIMIT $2;

-- name: guard_held_count
SELECT count(DISTINCT o.event_seq) FROM outbox o JOIN events e ON e.seq = o.event_seq
WHERE o.held AND e.org_id = $1;

-- name: guard_release
-- Hand the held rows back to the publisher, due now: the claim's per-resource rule delivers them
-- (and whatever waits behind them) in version order.
UPDATE outbox o SET held = false, next_attempt_at = now()
FROM events e
WHERE e.seq = o.event_seq AND o.held AND e.org_id = $1
RETURNING o.event_seq;

-- name: guard_discard
DELETE FROM outbox o
USING events e
WHERE e.seq = o.event_seq AND o.held AND e.org_id = $1
RETURNING o.event_seq;

-- name: guard_reset
-- Re-arm: deprovisions before now no longer count toward the next trip.
UPDATE organizations
SET guard_tripped_at = NULL, guard_trip_count = NULL, guard_trip_base = NULL,
    guard_reset_at = now()
WHERE id = $1;

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
