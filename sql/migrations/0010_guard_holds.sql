-- The guard holds every access-reducing change, for every consumer (issue 21).
--
-- A *hold* is per resource: from its first held resourceversion on, none of that resource's
-- events reaches a sink (outbox rows held or waiting behind a held row), the pull feed (its
-- queries skip held versions) or a snapshot (which shows the resource as it was before the
-- hold: `image`, and for a group `guard_hold_members`). A release gives the held events a new
-- position in the pull order (the releasing transaction's xid: after every cursor already
-- handed out) and hands their outbox rows back; a rejection restores the resources in the
-- store to their images and deletes their held events, so no consumer ever sees them and the
-- next change of each resource takes the first held version again (no hole).
-- See scim_service/provisioning/guard.py.

CREATE TABLE guard_holds (
    subject        uuid        PRIMARY KEY,
    org_id         uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    resource_type  text        NOT NULL CHECK (resource_type IN ('User', 'Group')),
    -- The first held resourceversion; consumers have seen at most first_version - 1.
    first_version  bigint      NOT NULL CHECK (first_version > 0),
    -- The resource before its first held change (attrs, version, created_at, setup state).
    image          jsonb       NOT NULL,
    held_at        timestamptz NOT NULL DEFAULT now(),
    -- A staged hold (SCIM_GUARD_STAGING_SECONDS) is released by the publisher at this time
    -- unless the guard trips first; NULL: held until an administrator decides.
    release_at     timestamptz
);
CREATE INDEX guard_holds_org ON guard_holds (org_id, resource_type, subject);
CREATE INDEX guard_holds_due ON guard_holds (release_at) WHERE release_at IS NOT NULL;

-- A held group's members as they were before its first held change.
CREATE TABLE guard_hold_members (
    group_id  uuid NOT NULL REFERENCES guard_holds (subject) ON DELETE CASCADE,
    user_id   uuid NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

-- Every access reduction, one row per user who lost access (deprovisioned, or removed from a
-- group): what the guard counts within its window. Pruned after 8 days (the longest window is
-- 7) by the publisher's retention loop.
CREATE TABLE guard_reductions (
    org_id         uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL DEFAULT now(),
    user_id        uuid        NOT NULL,
    deprovisioned  boolean     NOT NULL
);
CREATE INDEX guard_reductions_org ON guard_reductions (org_id, at);
CREATE INDEX guard_reductions_at ON guard_reductions (at);

-- Every decision (release, rejection, automatic release of staged holds is not recorded).
CREATE TABLE guard_decisions (
    id          bigserial   PRIMARY KEY,
    org_id      uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    action      text        NOT NULL CHECK (action IN ('released', 'rejected')),
    tripped_at  timestamptz,
    resources   integer     NOT NULL,
    events      integer     NOT NULL
);
CREATE INDEX guard_decisions_org ON guard_decisions (org_id, id);

-- Held outbox rows are due never ('infinity'), not only `held`: a publisher of a release that
-- does not know `held` (before 0009) claims only due rows, so it cannot deliver them either,
-- and the rows still hold back their resources' later versions.
UPDATE outbox SET next_attempt_at = 'infinity' WHERE held;

-- An event of a held resource waits while a decision about that resource is being committed
-- (the decision locks the hold row), so it is positioned after the released events
-- (the xid raise below then sees their new position) or deleted with the rejected ones.
CREATE OR REPLACE FUNCTION scim_event_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev xid8;
BEGIN
    NEW.xid := pg_current_xact_id();
    IF NEW.resource_version > 1 THEN
        PERFORM 1 FROM guard_holds h WHERE h.subject = NEW.subject FOR SHARE;
        SELECT e.xid INTO prev FROM events e
        WHERE e.subject = NEW.subject AND e.resource_version = NEW.resource_version - 1;
        IF prev IS NOT NULL AND prev > NEW.xid THEN
            NEW.xid := prev;
        END IF;
    END IF;
    RETURN NEW;
END $$;
