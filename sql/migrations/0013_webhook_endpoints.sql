-- Webhook endpoints managed at run time (issue 26). New tables only: nothing is added to the
-- write path. An endpoint is delivered from the events table in the pull API's total order
-- (xid, seq) (store/pull.py): it keeps its own position, and its own rows for the events it
-- failed to take (retrying, queued behind an earlier failure of the same resource, or dead).
-- The signing secret is not stored: it is derived from SCIM_WEBHOOK_ENDPOINT_KEY and the id.
SET LOCAL lock_timeout = '5s';

CREATE TABLE webhook_endpoints (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    url          text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    event_types  text[],     -- NULL: every type; an entry ending in ".*" is a prefix
    org_ids      uuid[],     -- NULL: every organization
    paused       boolean     NOT NULL DEFAULT false,
    -- Since when every attempt has failed (NULL: the last one succeeded), and why it was paused
    -- automatically (SCIM_WEBHOOK_ENDPOINT_DISABLE_AFTER_HOURS), if it was.
    failing_since    timestamptz,
    disabled_reason  text,
    -- Every event at or before this position has been delivered, filtered out, or given a row
    -- in webhook_endpoint_events.
    cursor_xid   xid8        NOT NULL,
    cursor_seq   bigint      NOT NULL,
    -- Which publisher delivers it now (one at a time), until when.
    lease_owner  text,
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Events an endpoint has not taken yet although its position is past them. Per resource, only
-- the lowest version is attempted; the others wait behind it. A dead row (attempts or age used
-- up, a permanent refusal, a forbidden address) keeps waiting until retried or discarded. The
-- payload is a copy: retention of the events table never takes an event an endpoint still owes.
CREATE TABLE webhook_endpoint_events (
    endpoint_id       uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    seq               bigint      NOT NULL,
    event_id          uuid        NOT NULL,
    subject           uuid        NOT NULL,
    resource_version  bigint      NOT NULL,
    payload           bytea       NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    dead              boolean     NOT NULL DEFAULT false,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, seq)
);
CREATE INDEX webhook_endpoint_events_subject
    ON webhook_endpoint_events (endpoint_id, subject, resource_version);
