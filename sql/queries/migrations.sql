-- Bookkeeping of the versioned migrations (store/migrate.py).

-- name: migrations_bookkeeping
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
-- The steps done of a migration split into steps (`-- migrate:step`, store/migrate.py) that
-- is not complete yet, so a rerun resumes after them; deleted when the migration is recorded.
CREATE TABLE IF NOT EXISTS schema_migration_steps (
    version     integer     NOT NULL,
    step        integer     NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version, step)
);

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: migrations_applied
SELECT version, checksum FROM schema_migrations;

-- name: migrations_record
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: migrations_steps_done
SELECT step, checksum FROM schema_migration_steps WHERE version = $1;

-- name: migrations_record_step
INSERT INTO schema_migration_steps (version, step, checksum) VALUES ($1, $2, $3);

-- name: migrations_forget_steps
DELETE FROM schema_migration_steps WHERE version = $1;

-- name: migrations_index_invalid
-- A concurrent index build that failed (a lock timeout, a cancel) leaves its index behind,
-- INVALID: true when the named index exists in that state.
SELECT EXISTS (
    SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid
);

-- name: migrations_session_lock_timeout
-- Before a step outside a transaction: the same short lock_timeout, for the session until
-- the step ends (then migrations_lift_bounds again).
SELECT set_config('lock_timeout', $1, false);

-- name: migrations_lift_bounds
-- Migrations (and waiting for another replica's) may take longer than the bounds the pool's
-- connections carry (SCIM_DB_STATEMENT_TIMEOUT, SCIM_DB_LOCK_TIMEOUT): lifted for the run.
SET statement_timeout = 0; SET lock_timeout = 0;

-- name: migrations_restore_bounds
RESET statement_timeout; RESET lock_timeout;

-- name: migrations_try_lock
-- Polled, not waited for: a session blocked in pg_advisory_lock() runs a statement, whose
-- snapshot a CREATE INDEX CONCURRENTLY of the holder waits for (a deadlock).
SELECT pg_try_advisory_lock($1);

-- name: migrations_unlock
SELECT pg_advisory_unlock($1);

-- name: migrations_step_lock_timeout
-- Inside each migration's transaction: a lock the migration cannot get within this long fails
-- the step (55P03), which is rolled back and retried after a pause, so requests never queue
-- behind a migration that waits for an open transaction (store/migrate.py).
SELECT set_config('lock_timeout', $1, true);

-- name: migrations_drop_invalid_index
-- The one identifier formatted in (DDL takes no parameters): the index name of the step's own
-- CREATE INDEX CONCURRENTLY, matched as [a-z_][a-z0-9_]* in the migration file, never input.
DROP INDEX CONCURRENTLY IF EXISTS "{index}";
