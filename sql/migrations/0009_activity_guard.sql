-- The mass-deprovisioning guard (issue 14, part 3).
--
-- When one organization's deprovisions within a window pass a threshold, the SCIM writes still
-- commit, but its `user.deprovisioned` deliveries are *held*: their outbox rows stay (so the
-- later events of the same user still wait behind them, see store/outbox.py) and are excluded
-- from claims until an administrator releases them (delivered in order) or discards them.
-- The trip itself is an event, `directory.guard_tripped`, whose subject is the organization:
-- it has its own per-organization version counter.

-- Online (issue 24): short locks only. Step 1 is catalog changes (nullable columns, constant
-- defaults, constraints NOT VALID, new tables) under short ACCESS EXCLUSIVE locks; the
-- constraints are validated and the indexes on existing tables built concurrently after it.
-- Steps: scim_service/store/migrate.py.

-- migrate:step in-transaction
-- Per-organization overrides (NULL: the process settings SCIM_DEPROVISION_GUARD_*).
ALTER TABLE organizations ADD COLUMN guard_enabled boolean;
ALTER TABLE organizations ADD COLUMN guard_percent double precision;
ALTER TABLE organizations ADD CONSTRAINT organizations_guard_percent_check
    CHECK (guard_percent > 0 AND guard_percent <= 100) NOT VALID;
ALTER TABLE organizations ADD COLUMN guard_min_users integer;
ALTER TABLE organizations ADD CONSTRAINT organizations_guard_min_users_check
    CHECK (guard_min_users >= 1) NOT VALID;
ALTER TABLE organizations ADD COLUMN guard_window_minutes double precision;
ALTER TABLE organizations ADD CONSTRAINT organizations_guard_window_minutes_check
    CHECK (guard_window_minutes > 0) NOT VALID;
-- Set while the guard is tripped (deprovisioned deliveries held), with what tripped it.
ALTER TABLE organizations ADD COLUMN guard_tripped_at timestamptz;
ALTER TABLE organizations ADD COLUMN guard_trip_count integer;
ALTER TABLE organizations ADD COLUMN guard_trip_base integer;
-- Deprovisions before this time never count again (set by a release or a discard).
ALTER TABLE organizations ADD COLUMN guard_reset_at timestamptz;
-- The organization's own event counter (resourceversion of its directory.* events).
ALTER TABLE organizations ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;

-- Replaced in one statement (new rows are checked at once), validated in step 3.
-- squawk-ignore ban-drop-constraint
ALTER TABLE events DROP CONSTRAINT events_resource_type_check,
    ADD CONSTRAINT events_resource_type_check
    CHECK (resource_type IN ('User', 'Group', 'Organization')) NOT VALID;

ALTER TABLE outbox ADD COLUMN held boolean NOT NULL DEFAULT false;

-- The SCIM activity log (issue 14, part 2): one row per SCIM request of an organization,
-- written in batches by a background task (scim_service/activity.py), never on the request
-- path. Bounded: rows older than SCIM_ACTIVITY_RETENTION_DAYS and beyond
-- SCIM_ACTIVITY_MAX_PER_ORG per organization are pruned in the background.
CREATE TABLE scim_activity (
    id             bigserial   PRIMARY KEY,
    org_id         uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,
    method         text        NOT NULL,
    route          text        NOT NULL,
    path           text        NOT NULL,
    status         integer     NOT NULL,
    scim_type      text,
    detail         text,
    duration_ms    double precision NOT NULL,
    idp            text        NOT NULL,
    user_agent     text,
    token_prefix   text,
    -- Set for a request whose token did not authenticate: invalid, revoked, expired, disabled.
    auth_failure   text,
    request_id     text        NOT NULL,
    request_body   text,
    response_body  text
);
CREATE INDEX scim_activity_org ON scim_activity (org_id, id);
CREATE INDEX scim_activity_org_errors ON scim_activity (org_id, id) WHERE status >= 400;
CREATE INDEX scim_activity_at ON scim_activity (at);

-- The last delivery per sink and organization (the status page: "is anything arriving?"),
-- written by the publisher when it records a batch as delivered.
CREATE TABLE sink_deliveries (
    sink               text        NOT NULL,
    org_id             uuid        NOT NULL,
    last_delivered_at  timestamptz NOT NULL,
    PRIMARY KEY (sink, org_id)
);

-- migrate:step in-transaction
-- Scans under SHARE UPDATE EXCLUSIVE: reads and writes go on.
ALTER TABLE organizations VALIDATE CONSTRAINT organizations_guard_percent_check;
ALTER TABLE organizations VALIDATE CONSTRAINT organizations_guard_min_users_check;
ALTER TABLE organizations VALIDATE CONSTRAINT organizations_guard_window_minutes_check;

-- migrate:step in-transaction
ALTER TABLE events VALIDATE CONSTRAINT events_resource_type_check;

-- migrate:step no-transaction
-- "How many distinct users did this organization deprovision since t?"
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_org_deprovisioned ON events (org_id, time)
    WHERE type = 'user.deprovisioned';

-- migrate:step no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_held ON outbox (event_seq) WHERE held;

-- migrate:step no-transaction
-- A failed authentication is filed under the organizations owning a token with its prefix.
CREATE INDEX CONCURRENTLY IF NOT EXISTS scim_tokens_display_prefix ON scim_tokens (display_prefix);
