-- The transactional outbox and its publisher. See store/outbox.py for the ordering argument.

-- name: event_rows
-- Not a statement: the events of a change and their outbox rows, which every write-with-events
-- statement ends with (`-- include: event_rows` after a CTE named `change`; the loader,
-- store/db.py, renumbers $1..$9 to follow the statement's own parameters). Written here once.
-- $1 ids, $2 org ids, $3 subjects, $4 resource types, $5 resource versions, $6 types, $7 times,
-- $8 payloads (encoded CloudEvents), $9 sinks. A change that touched no row writes no event.
e AS (
    INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time, payload)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[],
                         $7::timestamptz[], $8::bytea[])
    WHERE EXISTS (SELECT 1 FROM change)
    RETURNING seq, subject, resource_version
), o AS (
    INSERT INTO outbox (sink, event_seq, subject, resource_version)
    SELECT k.sink, e.seq, e.subject, e.resource_version
    FROM e CROSS JOIN unnest($9::text[]) AS k(sink)
)

-- name: insert_events
-- Events on their own (a change that touched several resources, written before them), on the
-- writer's connection and transaction: any number of events and sinks in one statement.
WITH change AS (SELECT),
-- include: event_rows
SELECT count(*) FROM e;

-- name: claim
-- One short transaction (this statement alone): lease up to $2 claimable events of one sink
-- and count the attempt. Claimable: not dead, due, not leased by a live publisher, not locked by
-- a concurrent claim, and with no earlier version of the same resource still pending for this
-- sink (pending, retrying, dead-lettered, leased or held: all those rows exist). Rows held by
-- the mass-deprovisioning guard (guard.sql) are never claimed until released (and never due:
-- next_attempt_at is 'infinity', which also keeps a publisher of an older release off them). An event whose
-- attempts are already used up (its deliveries kept killing the publisher, so no outcome was ever
-- recorded) is dead-lettered here instead of being handed out again.
-- Claimable rows are found from each resource's head, not by walking the backlog: a recursive
-- skip scan over outbox_resource (sink, subject, resource_version) visits each pending subject's
-- oldest version once (one index probe per subject), starting at subject $6 (the caller rotates
-- it, so no subject waits behind others for long), and stops as soon as $2 claimable heads are
-- found. Only a head can be claimable (any earlier version pending, retrying, dead, leased or
-- held blocks the later ones), so what waits behind a head is never read: claim time depends on
-- the number of pending subjects, not on how deep their queues are (measured in bench/).
-- Batch mode ($7 > 1, a webhook sink with SCIM_WEBHOOK_BATCH_MAX): with each claimed head come
-- the versions right behind it, up to $7 in all, as long as each of them could be claimed on
-- its own the moment the one before it is delivered (not dead, not held by the guard, due, not
-- leased, attempts left) and the head itself is not dead-lettered by this claim: the first one
-- that could not stops the run, so a run is exactly the next $7 (or fewer) versions in order,
-- what $7 claims one after the other would have handed out. They are read by the same index
-- (one probe and $7 - 1 rows per head, still nothing further behind). A follower locked by
-- another transaction (SKIP LOCKED) ends its run there too (`k = n`): never a gap.
-- Then only the claimed rows are joined to events (MATERIALIZED): driven from events, the
-- planner would sometimes walk the whole retained history probing the outbox.
-- $1 sink, $2 limit (heads), $3 lease owner, $4 lease seconds, $5 max attempts, $6 first
-- subject, $7 versions per resource at most (1: heads only).
WITH RECURSIVE heads AS (
    (SELECT o.subject, o.event_seq
     FROM outbox o
     WHERE o.sink = $1 AND o.subject >= $6
     ORDER BY o.subject, o.resource_version
     LIMIT 1)
    UNION ALL
    SELECT n.subject, n.event_seq
    FROM heads h
    CROSS JOIN LATERAL (
        SELECT o.subject, o.event_seq
        FROM outbox o
        WHERE o.sink = $1 AND o.subject > h.subject
        ORDER BY o.subject, o.resource_version
        LIMIT 1
    ) n
), c AS MATERIALIZED (
    SELECT o.event_seq, o.subject, o.resource_version, o.attempts
    FROM heads h
    JOIN outbox o ON o.sink = $1 AND o.event_seq = h.event_seq
    WHERE NOT o.dead
      AND NOT o.held
      AND o.next_attempt_at <= now()
      AND (o.lease_until IS NULL OR o.lease_until < now())
    LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
), behind AS (
    SELECT b.event_seq, c.subject, b.n
    FROM c CROSS JOIN LATERAL (
        SELECT f.event_seq,
               row_number() OVER (ORDER BY f.resource_version) AS n,
               bool_and(f.ready) OVER (ORDER BY f.resource_version) AS run
        FROM (
            SELECT o.event_seq, o.resource_version,
                   (NOT o.dead AND NOT o.held AND o.next_attempt_at <= now()
                    AND (o.lease_until IS NULL OR o.lease_until < now())
                    AND o.attempts < $5) AS ready
            FROM outbox o
            WHERE o.sink = $1 AND o.subject = c.subject
              AND o.resource_version > c.resource_version
            ORDER BY o.resource_version
            LIMIT greatest($7::int - 1, 0)
        ) f
    ) b
    WHERE $7::int > 1 AND c.attempts < $5 AND b.run
), locked AS MATERIALIZED (
    SELECT o.event_seq, behind.subject, behind.n
    FROM behind
    JOIN outbox o ON o.sink = $1 AND o.event_seq = behind.event_seq
    FOR UPDATE OF o SKIP LOCKED
), taken AS (
    SELECT event_seq FROM c
    UNION ALL
    SELECT event_seq
    FROM (SELECT event_seq, n, row_number() OVER (PARTITION BY subject ORDER BY n) AS k
          FROM locked) l
    WHERE l.k = l.n
), u AS (
    UPDATE outbox o
    SET attempts = o.attempts + 1,
        lease_owner = CASE WHEN o.attempts < $5 THEN $3 END,
        lease_until = CASE WHEN o.attempts < $5
                           THEN now() + make_interval(secs => $4::float8) END,
        dead = o.attempts >= $5,
        dead_at = CASE WHEN o.attempts >= $5 THEN now() END,
        last_error = CASE WHEN o.attempts >= $5
                          THEN 'no outcome recorded after ' || o.attempts || ' attempts'
                               || ' (the publisher stopped mid-delivery each time)'
                          ELSE o.last_error END
    FROM taken
    WHERE o.sink = $1 AND o.event_seq = taken.event_seq
    RETURNING o.event_seq, o.attempts, o.created_at, o.dead
)
SELECT u.event_seq, u.attempts, u.created_at, u.dead, e.id, e.type, e.org_id, e.subject, e.payload
FROM u JOIN events e ON e.seq = u.event_seq
ORDER BY u.event_seq;

-- name: delivered
-- Delivered rows go, whoever holds the lease now: the event reached the receiver. The time of
-- the last delivery per organization is kept for the status page (rows in org order: two
-- publishers recording at once lock them in the same order).
WITH d AS (
    DELETE FROM outbox WHERE sink = $1 AND event_seq = ANY($2::bigint[])
    RETURNING event_seq
)
INSERT INTO sink_deliveries (sink, org_id, last_delivered_at)
SELECT $1, e.org_id, now()
FROM d JOIN events e ON e.seq = d.event_seq
GROUP BY e.org_id
ORDER BY e.org_id
ON CONFLICT (sink, org_id) DO UPDATE SET last_delivered_at = excluded.last_delivered_at;

-- name: failed
-- Per event: a later attempt, or dead-lettered, with the reason kept; the lease ends. Only the
-- lease holder records a failure (a publisher whose lease ran out must not overwrite the
-- attempt another publisher has taken since). Attempts were counted when the lease was taken.
UPDATE outbox o
SET next_attempt_at = now() + make_interval(secs => f.delay),
    last_error = f.error,
    dead = f.dead,
    dead_at = CASE WHEN f.dead THEN now() END,
    lease_owner = NULL,
    lease_until = NULL
FROM unnest($2::bigint[], $3::float8[], $4::text[], $5::bool[]) AS f(seq, delay, error, dead)
WHERE o.sink = $1 AND o.event_seq = f.seq AND o.lease_owner = $6;

-- name: release_leases
-- A publisher stopping before its deliveries finished hands their rows back at once (the
-- attempt it could not finish is not counted), instead of letting the leases run out.
UPDATE outbox
SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
WHERE sink = $1 AND lease_owner = $2 AND event_seq = ANY($3::bigint[]);

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
SET dead = false, dead_at = NULL, attempts = 0, next_attempt_at = now(), last_error = NULL,
    lease_owner = NULL, lease_until = NULL
FROM events e
WHERE e.seq = o.event_seq AND o.dead
  AND ($1::text IS NULL OR o.sink = $1)
  AND ($2::uuid[] IS NULL OR e.id = ANY($2::uuid[]))
RETURNING e.id;

-- name: replay
-- Re-send events from a time or from an event id (inclusive), with their original ids, to the
-- given sinks. Events still pending for a sink are not queued twice; held ones never are.
WITH start AS (
    SELECT CASE WHEN $2::uuid IS NOT NULL THEN (SELECT seq FROM events WHERE id = $2::uuid) END AS seq
), chosen AS (
    SELECT e.seq, e.subject, e.resource_version
    FROM events e, start
    WHERE ($1::timestamptz IS NULL OR e.time >= $1::timestamptz)
      AND ($2::uuid IS NULL OR e.seq >= start.seq)
      AND ($4::uuid IS NULL OR e.org_id = $4::uuid)
      -- Never a held change (guard.sql): it is delivered by its release or never (rejected
      -- events are deleted).
      AND NOT EXISTS (
          SELECT 1 FROM guard_holds h
          WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
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
      AND NOT EXISTS (SELECT 1 FROM guard_holds h  -- held: kept until decided
                      WHERE h.subject = e.subject AND e.resource_version >= h.first_version)
    ORDER BY e.seq
    LIMIT $2
), gone AS (
    DELETE FROM events e USING old WHERE e.seq = old.seq RETURNING e.xid, e.seq
), top AS (
    SELECT xid, seq FROM gone ORDER BY xid DESC, seq DESC LIMIT 1
), mark AS (
    -- The pull API's oldest available position (store/pull.py): the highest one deleted.
    INSERT INTO events_purged (xid, seq) SELECT xid, seq FROM top
    ON CONFLICT (singleton) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq
    WHERE (events_purged.xid, events_purged.seq) < (EXCLUDED.xid, EXCLUDED.seq)
)
SELECT count(*) FROM gone;

-- name: outbox_stats
-- Per sink: pending (not dead, not held) count, age of the oldest pending event, dead-lettered
-- count, how many are being delivered right now (a live lease), and how many the
-- mass-deprovisioning guard holds.
SELECT sink,
       count(*) FILTER (WHERE NOT dead AND NOT held) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE NOT dead AND NOT held)), 0) AS oldest_age,
       count(*) FILTER (WHERE dead) AS dead,
       count(*) FILTER (WHERE NOT dead AND lease_until >= now()) AS leased,
       count(*) FILTER (WHERE held) AS held
FROM outbox
GROUP BY sink;

-- name: discard_sink
-- An operator's explicit choice: drop every row (pending and dead) still queued for a sink.
DELETE FROM outbox WHERE sink = $1;

-- name: move_sink
-- Hand a sink's queued rows to another sink (fresh attempts, due now); rows the target already
-- has for the same event are kept once. Order per resource is kept: versions travel with rows.
-- Rows held by the mass-deprovisioning guard stay held (and never due).
WITH gone AS (
    DELETE FROM outbox WHERE sink = $1
    RETURNING event_seq, subject, resource_version, created_at, held
)
INSERT INTO outbox (sink, event_seq, subject, resource_version, created_at, held, next_attempt_at)
SELECT $2, event_seq, subject, resource_version, created_at, held,
       CASE WHEN held THEN 'infinity'::timestamptz ELSE now() END
FROM gone
ON CONFLICT (sink, event_seq) DO NOTHING;
