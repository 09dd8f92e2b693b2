-- Bookkeeping of the versioned migrations (store/migrate.py).

-- name: migrations_bookkeeping
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: migrations_applied
SELECT version, checksum FROM schema_migrations;

-- name: migrations_record
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: migrations_lift_bounds
-- Migrations (and waiting for another replica's) may take longer than the bounds the pool's
-- connections carry (SCIM_DB_STATEMENT_TIMEOUT, SCIM_DB_LOCK_TIMEOUT): lifted for the run.
SET statement_timeout = 0; SET lock_timeout = 0;

-- name: migrations_restore_bounds
RESET statement_timeout; RESET lock_timeout;

-- name: migrations_lock
SELECT pg_advisory_lock($1);

-- name: migrations_unlock
SELECT pg_advisory_unlock($1);

-- name: migrations_step_lock_timeout
-- Inside each migration's transaction: a lock the migration cannot get within this long fails
-- the step (55P03), which is rolled back and retried after a pause, so requests never queue
-- behind a migration that waits for an open transaction (store/migrate.py).
SELECT set_config('lock_timeout', $1, true);
