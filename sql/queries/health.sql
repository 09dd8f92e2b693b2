-- Liveness of a connection (readiness probe, the LISTEN connections' keep-alive).

-- name: ping
SELECT 1;
