-- The transactional outbox and its publisher. See store/outbox.py for the ordering argument.

-- name: insert_events
-- Any number of events and sinks in one statement, on the writer's connection and transaction.
-- (The same three inserts close `insert_user_with_events` in users.sql: keep them alike.)
WITH e AS (
    INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time, payload)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[],
                         $7::timestamptz[], $8::bytea[])
    RETURNING seq, subject, resource_version
)
INSERT INTO outbox (sink, event_seq, subject, resource_version)
SELECT k.sink, e.seq, e.subject, e.resource_version
FROM e CROSS JOIN unnest($9::text[]) AS k(sink);

-- name: claim
-- The oldest claimable events of one sink: due, not dead, not locked by another publisher, and
-- with no earlier version of the same resource still pending for this sink (pending, retrying,
-- dead-lettered or being delivered right now by another publisher: all those rows exist).
-- The outbox is scanned first (MATERIALIZED) and only the claimed rows are joined to events:
-- driven from events, the planner would sometimes walk the whole retained history probing the
-- outbox (measured: 71,000 buffers for 200 rows, and the relay down from 25,000 to 1,500/s).
WITH c AS MATERIALIZED (
    SELECT o.event_seq, o.attempts, o.created_at
    FROM outbox o
    WHERE o.sink = $1
      AND NOT o.dead
      AND o.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.sink = o.sink AND p.subject = o.subject AND p.resource_version < o.resource_version
      )
    ORDER BY o.event_seq
    LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
)
SELECT c.event_seq, c.attempts, c.created_at, e.id, e.type, e.org_id, e.subject, e.payload
FROM c JOIN events e ON e.seq = c.event_seq
ORDER BY c.event_seq;

-- name: delivered
DELETE FROM outbox WHERE sink = $1 AND event_seq = ANY($2::bigint[]);

-- name: failed
-- Per event: a later attempt, or dead-lettered ($5) with the reason kept.
UPDATE outbox o
SET attempts = o.attempts + 1,
    next_attempt_at = now() + make_interval(secs => f.delay),
    last_error = f.error,
    dead = f.dead,
    dead_at = CASE WHEN f.dead THEN now() END
FROM unnest($2::bigint[], $3::float8[], $4::text[], $5::bool[]) AS f(seq, delay, error, dead)
WHERE o.sink = $1 AND o.event_seq = f.seq;

-- name: dead_letters
SELECT o.sink, e.id, e.type, e.org_id, e.subject, o.resource_version, o.attempts, o.last_error,
       o.dead_at, e.time
FROM outbox o JOIN events e ON e.seq = o.event_seq
WHERE o.dead AND ($1::text IS NULL OR o.sink = $1)
ORDER BY o.dead_at, o.event_seq
LIMIT $2;

-- name: retry_dead
-- Dead-lettered events (all, or the given ids) get a fresh set of attempts, due now.
UPDATE outbox o
SET dead = false, dead_at = NULL, attempts = 0, next_attempt_at = now(), last_error = NULL
FROM events e
WHERE e.seq = o.event_seq AND o.dead
  AND ($1::text IS NULL OR o.sink = $1)
  AND ($2::uuid[] IS NULL OR e.id = ANY($2::uuid[]))
RETURNING e.id;

-- name: replay
-- Re-send events from a time or from an event id (inclusive), with their original ids, to the
-- given sinks. Events still pending for a sink are not queued twice.
WITH start AS (
    SELECT CASE WHEN $2::uuid IS NOT NULL THEN (SELECT seq FROM events WHERE id = $2::uuid) END AS seq
), chosen AS (
    SELECT e.seq, e.subject, e.resource_version
    FROM events e, start
    WHERE ($1::timestamptz IS NULL OR e.time >= $1::timestamptz)
      AND ($2::uuid IS NULL OR e.seq >= start.seq)
      AND ($4::uuid IS NULL OR e.org_id = $4::uuid)
)
INSERT INTO outbox (sink, event_seq, subject, resource_version)
SELECT k.sink, c.seq, c.subject, c.resource_version
FROM chosen c CROSS JOIN unnest($3::text[]) AS k(sink)
ON CONFLICT (sink, event_seq) DO NOTHING
RETURNING event_seq;

-- name: event_seq_of
SELECT seq FROM events WHERE id = $1;

-- name: purge_delivered
-- Retention: events older than the horizon that no sink still has to deliver, a batch at a time.
WITH old AS (
    SELECT e.seq FROM events e
    WHERE e.time < $1
      AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_seq = e.seq)
    ORDER BY e.seq
    LIMIT $2
)
DELETE FROM events e USING old WHERE e.seq = old.seq;

-- name: outbox_stats
-- Per sink: pending (not dead) count, age of the oldest pending event, dead-lettered count.
SELECT sink,
       count(*) FILTER (WHERE NOT dead) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE NOT dead)), 0) AS oldest_age,
       count(*) FILTER (WHERE dead) AS dead
FROM outbox
GROUP BY sink;
