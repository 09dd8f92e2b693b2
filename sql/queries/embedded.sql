-- The embedded PostgreSQL's database (embedded.py, through psql: no parameters there, so the
-- name `scim`, embedded.DATABASE, is written out).

-- name: embedded_database_exists
SELECT 1 FROM pg_database WHERE datname = 'scim';

-- name: embedded_create_database
CREATE DATABASE scim;
