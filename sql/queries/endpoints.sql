-- Webhook endpoints (issue 26): their settings, positions and owed events. See
-- events/endpoints.py for how they are delivered. xid8 values travel as text.

-- name: endpoint_insert
-- $1 url, $2 description, $3 event types (NULL: all), $4 organizations (NULL: all),
-- $5 xid, $6 seq: the starting position (events after it are delivered).
INSERT INTO webhook_endpoints (url, description, event_types, org_ids, cursor_xid, cursor_seq)
VALUES ($1, $2, $3, $4, $5::text::xid8, $6)
RETURNING id, url, description, event_types, org_ids, paused, cursor_xid::text AS cursor_xid,
          cursor_seq, created_at, updated_at;

-- name: endpoint_list
SELECT w.id, w.url, w.description, w.event_types, w.org_ids, w.paused,
       w.cursor_xid::text AS cursor_xid, w.cursor_seq, w.created_at, w.updated_at,
       w.failing_since, w.disabled_reason,
       (SELECT count(*) FROM webhook_endpoint_events r
        WHERE r.endpoint_id = w.id AND NOT r.dead) AS pending,
       (SELECT count(*) FROM webhook_endpoint_events r
        WHERE r.endpoint_id = w.id AND r.dead) AS dead
FROM webhook_endpoints w
WHERE ($1::uuid IS NULL OR w.id = $1::uuid)
ORDER BY w.created_at, w.id;

-- name: endpoint_update
-- $1 id; NULL leaves a field as it is, except where $6 / $7 say "set to NULL" (every type /
-- every organization).
UPDATE webhook_endpoints SET
    url = coalesce($2, url),
    description = coalesce($3, description),
    event_types = CASE WHEN $6::boolean THEN NULL ELSE coalesce($4, event_types) END,
    org_ids = CASE WHEN $7::boolean THEN NULL ELSE coalesce($5, org_ids) END,
    paused = coalesce($8, paused),
    -- resumed by hand: its failing clock starts again
    failing_since = CASE WHEN $8 IS FALSE THEN NULL ELSE failing_since END,
    disabled_reason = CASE WHEN $8 IS NOT NULL THEN NULL ELSE disabled_reason END,
    updated_at = now()
WHERE id = $1
RETURNING id;

-- name: endpoint_delete
DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id;

-- name: endpoint_ids
-- The endpoints to deliver (not paused).
SELECT id FROM webhook_endpoints WHERE NOT paused ORDER BY id;

-- name: endpoint_lease
-- Take (or renew) the endpoint for $2 until $3 seconds from now; nothing when another
-- publisher holds it or it is paused or gone.
UPDATE webhook_endpoints
SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND NOT paused
  AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
RETURNING id, url, event_types, org_ids, cursor_xid::text AS cursor_xid, cursor_seq;

-- name: endpoint_release
UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND lease_owner = $2;

-- name: endpoint_events_after
-- The pull API's order (pull.sql pull_events): events after ($1, $2), below the snapshot's
-- xmin $3, at most $4, none the guard holds.
SELECT e.xid::text AS xid, e.seq, e.id, e.org_id, e.subject, e.resource_version, e.type,
       e.payload
FROM events e
WHERE (e.xid, e.seq) > ($1::text::xid8, $2::bigint)
  AND e.xid < $3::text::xid8
  AND NOT EXISTS (
      SELECT 1 FROM guard_holds h
      WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
ORDER BY e.xid, e.seq
LIMIT $4;

-- name: endpoint_waiting_subjects
-- Which of the resources $2 have owed events at endpoint $1 (their new events queue behind).
SELECT DISTINCT subject FROM webhook_endpoint_events
WHERE endpoint_id = $1 AND subject = ANY($2::uuid[]);

-- name: endpoint_due
-- The owed events to attempt now: per resource the lowest version only, when it is due and
-- not dead; at most $2.
SELECT r.seq, r.event_id, r.subject, r.resource_version, r.payload, r.attempts, r.created_at
FROM webhook_endpoint_events r
WHERE r.endpoint_id = $1 AND NOT r.dead AND r.next_attempt_at <= now()
  AND NOT EXISTS (
      SELECT 1 FROM webhook_endpoint_events o
      WHERE o.endpoint_id = r.endpoint_id AND o.subject = r.subject
        AND o.resource_version < r.resource_version)
ORDER BY r.seq
LIMIT $2;

-- name: endpoint_owe
-- New owed events: $2 seqs, $3 event ids, $4 subjects, $5 versions, $6 payloads, $7 attempts
-- made, $8 seconds until the next attempt, $9 dead, $10 last errors.
INSERT INTO webhook_endpoint_events
    (endpoint_id, seq, event_id, subject, resource_version, payload, attempts, next_attempt_at,
     dead, last_error)
SELECT $1, t.seq, t.event_id, t.subject, t.version, t.payload, t.attempts,
       now() + make_interval(secs => t.delay), t.dead, t.error
FROM unnest($2::bigint[], $3::uuid[], $4::uuid[], $5::bigint[], $6::bytea[], $7::int[],
            $8::float8[], $9::boolean[], $10::text[])
     AS t(seq, event_id, subject, version, payload, attempts, delay, dead, error)
ON CONFLICT (endpoint_id, seq) DO NOTHING;

-- name: endpoint_settle
-- Owed events delivered ($2 seqs): gone.
DELETE FROM webhook_endpoint_events WHERE endpoint_id = $1 AND seq = ANY($2::bigint[]);

-- name: endpoint_failed
-- Owed events that failed again: $2 seqs, $3 seconds until the next attempt, $4 dead, $5 errors.
UPDATE webhook_endpoint_events r
SET attempts = r.attempts + 1, next_attempt_at = now() + make_interval(secs => t.delay),
    dead = t.dead, last_error = t.error
FROM unnest($2::bigint[], $3::float8[], $4::boolean[], $5::text[]) AS t(seq, delay, dead, error)
WHERE r.endpoint_id = $1 AND r.seq = t.seq;

-- name: endpoint_advance
-- Move the position to ($3, $4), only while this publisher ($2) holds the endpoint.
UPDATE webhook_endpoints SET cursor_xid = $3::text::xid8, cursor_seq = $4
WHERE id = $1 AND lease_owner = $2 AND (cursor_xid, cursor_seq) < ($3::text::xid8, $4::bigint)
RETURNING id;

-- name: endpoint_retry_dead
-- An endpoint's dead letters ($1) attempted again now.
UPDATE webhook_endpoint_events SET dead = false, attempts = 0, next_attempt_at = now()
WHERE endpoint_id = $1 AND dead;

-- name: endpoint_held
-- Whether publisher $2 still holds endpoint $1 (locks its row for the recording transaction).
SELECT id FROM webhook_endpoints WHERE id = $1 AND lease_owner = $2 FOR UPDATE;

-- name: endpoint_health
-- After a round of endpoint $1: $2 some attempt succeeded, $3 some failed; failing for longer
-- than $4 seconds (NULL: never) pauses it. Returns whether this call paused it.
WITH due AS (
    SELECT w.id, coalesce(NOT $2 AND $4::float8 IS NOT NULL AND NOT w.paused
                  AND w.failing_since < now() - make_interval(secs => $4::float8),
                  false) AS disable,
           w.failing_since
    FROM webhook_endpoints w WHERE w.id = $1 AND ($2 OR $3)
)
UPDATE webhook_endpoints w SET
    failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(w.failing_since, now()) END,
    paused = w.paused OR due.disable,
    disabled_reason = CASE WHEN due.disable
        THEN 'disabled automatically: every attempt failed since ' || due.failing_since::text
        ELSE w.disabled_reason END
FROM due
WHERE w.id = due.id
RETURNING due.disable;
