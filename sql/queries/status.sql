-- The directory status page of one organization. See scim_service/provisioning/status.py.

-- name: status_backlog
-- Per sink: this organization's events not yet delivered, held by the guard, dead-lettered, and
-- the age of the oldest pending one.
SELECT o.sink,
       count(*) FILTER (WHERE NOT o.dead AND NOT o.held) AS pending,
       count(*) FILTER (WHERE o.held) AS held,
       count(*) FILTER (WHERE o.dead) AS dead,
       coalesce(extract(epoch FROM now() - min(o.created_at)
                FILTER (WHERE NOT o.dead AND NOT o.held)), 0) AS oldest_age
FROM outbox o JOIN events e ON e.seq = o.event_seq
WHERE e.org_id = $1
GROUP BY o.sink;

-- name: status_deliveries
SELECT sink, last_delivered_at FROM sink_deliveries WHERE org_id = $1;

-- name: tokens_expiring
-- Active tokens (every organization) that expire within $1 days: the metric.
SELECT count(*) FROM scim_tokens
WHERE revoked_at IS NULL AND expires_at > now()
  AND expires_at <= now() + make_interval(days => $1);
