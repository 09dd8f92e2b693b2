-- Liveness of a connection (readiness probe, the LISTEN connections' keep-alive).

-- name: ping
SELECT 1;

-- name: writable
-- Whether this session could write now (readiness): not a standby, not read-only by default.
SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off';
