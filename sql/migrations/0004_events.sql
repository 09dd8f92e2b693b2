-- Transactional outbox.
--
-- `events` holds every CloudEvent ever written (until retention), encoded once, exactly as it is
-- sent; `outbox` is the small, live set of pending deliveries, one row per (sink, event), written
-- in the same transaction as the change. A delivered row is deleted (so claims only ever scan
-- pending rows); a dead-lettered row stays, marked, so the later events of its resource wait
-- behind it. Ordering: see store/outbox.py.

ALTER TABLE users ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE events (
    seq               bigserial   PRIMARY KEY,
    id                uuid        NOT NULL UNIQUE,
    org_id            uuid        NOT NULL,
    subject           uuid        NOT NULL,
    resource_type     text        NOT NULL CHECK (resource_type IN ('User', 'Group')),
    resource_version  bigint      NOT NULL CHECK (resource_version > 0),
    type              text        NOT NULL,
    time              timestamptz NOT NULL,
    payload           bytea       NOT NULL,
    CONSTRAINT events_resource_version_key UNIQUE (subject, resource_version)
);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_org_time ON events (org_id, time);

CREATE TABLE outbox (
    sink              text        NOT NULL,
    event_seq         bigint      NOT NULL,
    subject           uuid        NOT NULL,
    resource_version  bigint      NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text,
    dead              boolean     NOT NULL DEFAULT false,
    dead_at           timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, event_seq)
);
-- "Is an earlier version of this resource still pending for this sink?"
CREATE INDEX outbox_resource ON outbox (sink, subject, resource_version);
CREATE INDEX outbox_dead ON outbox (sink, dead_at) WHERE dead;

-- The pending set churns (insert, then delete on delivery): vacuum it eagerly so claims never
-- wade through dead tuples, and keep its statistics fresh so plans stay index scans.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);

-- One NOTIFY per writing statement (and PostgreSQL folds repeats within a transaction): the
-- publisher wakes the moment a change commits, with polling only as a fallback.
CREATE FUNCTION scim_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scim_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION scim_outbox_notify();
