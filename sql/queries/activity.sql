-- The SCIM activity log. See scim_service/activity.py.

-- name: activity_insert
-- A batch of requests. A row without an organization (its token matched no token) is filed,
-- unverified, under every organization owning a token with the same public prefix, and dropped
-- if none does.
INSERT INTO scim_activity (org_id, at, method, route, path, status, scim_type, detail,
                           duration_ms, idp, user_agent, token_prefix, auth_failure, request_id,
                           request_body, response_body, unverified, warning, skipped_members)
SELECT o.org_id, r.at, r.method, r.route, r.path, r.status, r.scim_type, r.detail, r.duration_ms,
       r.idp, r.user_agent, r.token_prefix, r.auth_failure, r.request_id, r.request_body,
       r.response_body, r.org_id IS NULL, r.warning,
       string_to_array(r.skipped, ',')::uuid[]
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int[],
            $7::text[], $8::text[], $9::float8[], $10::text[], $11::text[], $12::text[],
            $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
     AS r(org_id, at, method, route, path, status, scim_type, detail, duration_ms, idp,
          user_agent, token_prefix, auth_failure, request_id, request_body, response_body,
          warning, skipped)
CROSS JOIN LATERAL (
    SELECT r.org_id AS org_id WHERE r.org_id IS NOT NULL
    UNION
    SELECT t.org_id FROM scim_tokens t
    WHERE r.org_id IS NULL AND r.token_prefix IS NOT NULL AND t.display_prefix = r.token_prefix
) AS o
RETURNING org_id;

-- name: activity_latest
-- The newest $2 entries (only errors with $3), oldest first.
SELECT * FROM (
    SELECT id, at, method, route, path, status, scim_type, detail, duration_ms, idp, user_agent,
           token_prefix, auth_failure, request_id, request_body, response_body, unverified,
           warning, skipped_members
    FROM scim_activity
    WHERE org_id = $1 AND (NOT $3 OR status >= 400)
    ORDER BY id DESC
    LIMIT $2
) AS page
ORDER BY id;

-- name: activity_after
-- The entries after id $2 (`--follow`), oldest first.
SELECT id, at, method, route, path, status, scim_type, detail, duration_ms, idp, user_agent,
       token_prefix, auth_failure, request_id, request_body, response_body, unverified,
       warning, skipped_members
FROM scim_activity
WHERE org_id = $1 AND id > $2 AND (NOT $4 OR status >= 400)
ORDER BY id
LIMIT $3;

-- name: activity_prune_old
DELETE FROM scim_activity
WHERE id IN (SELECT id FROM scim_activity WHERE at < $1 ORDER BY at LIMIT $2);

-- name: activity_prune_org
-- Keep the newest $2 entries of one organization that are (not, with $3) unverified: the
-- verified ones and the unverified ones have caps of their own, so a flood of the latter never
-- pushes the former out.
DELETE FROM scim_activity
WHERE org_id = $1 AND unverified = $3
  AND id <= (SELECT id FROM scim_activity WHERE org_id = $1 AND unverified = $3
             ORDER BY id DESC OFFSET $2 LIMIT 1);

-- name: activity_last_success
-- The last successful (2xx/3xx) request per IdP.
SELECT DISTINCT ON (idp) idp, at, method, route, status
FROM scim_activity
WHERE org_id = $1 AND status < 400
ORDER BY idp, id DESC;

-- name: activity_error_rate
-- Requests and errors (4xx/5xx, failed authentications with a genuine token included) since $2;
-- unverified entries (a public prefix with a wrong token) are nobody's requests. A client that
-- hung up mid-request (499, client_closed) is a request but no error: nothing was refused.
SELECT count(*) AS requests,
       count(*) FILTER (WHERE status >= 400 AND status <> 499) AS errors
FROM scim_activity WHERE org_id = $1 AND at >= $2 AND NOT unverified;

-- name: activity_skipped_members
-- Member ids skipped by group writes since $2 (no users of the organization): how many
-- requests, the distinct ids (at most $3 of them, newest requests first) and how many in all.
WITH w AS (
    SELECT id, skipped_members FROM scim_activity
    WHERE org_id = $1 AND at >= $2 AND skipped_members IS NOT NULL AND NOT unverified
), ids AS (
    SELECT m, max(w.id) AS last FROM w, unnest(w.skipped_members) AS m GROUP BY m
)
SELECT (SELECT count(*) FROM w) AS requests,
       (SELECT count(*) FROM ids) AS total,
       coalesce((SELECT array_agg(m ORDER BY last DESC, m)
                 FROM (SELECT m, last FROM ids ORDER BY last DESC, m LIMIT $3) AS x), '{}') AS ids;
