-- Pull API (issue 13): events in one total order, by position (xid, seq), that never changes
-- behind a reader. See store/pull.py for the whole argument; in short:
--
-- * seq (bigserial) is taken before commit and transactions commit out of order, so
--   "seq > cursor" alone could hand out a cursor behind which an earlier event appears later.
-- * `xid` is the id of the writing transaction (pg_current_xact_id(): the top-level one, also
--   inside a savepoint), raised to the previous event of the same resource's `xid` when that is
--   larger. A reader serves only events with xid below its snapshot's xmin: every transaction
--   below xmin has finished, and every event still to come has xid >= its own transaction id
--   >= xmin, so the set served never changes behind a cursor.
-- * The raise keeps each resource's events in version order: a transaction can get its id
--   (its first write, e.g. locking one group) before it waits for a lock held by a younger
--   transaction (another group), and then writes that resource's next version with the older
--   id. The previous version is committed and visible to the inserting statement (the writer
--   holds the resource's row lock, taken in an earlier statement), and rows inserted earlier
--   by the same statement are visible to a row trigger, so chunked events chain too.
ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE FUNCTION scim_event_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev xid8;
BEGIN
    NEW.xid := pg_current_xact_id();
    IF NEW.resource_version > 1 THEN
        SELECT e.xid INTO prev FROM events e
        WHERE e.subject = NEW.subject AND e.resource_version = NEW.resource_version - 1;
        IF prev IS NOT NULL AND prev > NEW.xid THEN
            NEW.xid := prev;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER events_position BEFORE INSERT ON events
FOR EACH ROW EXECUTE FUNCTION scim_event_position();

CREATE INDEX events_position ON events (xid, seq);
CREATE INDEX events_org_position ON events (org_id, xid, seq);

-- Retention deletes events; the highest position it has deleted is kept here, so a cursor
-- older than that gets a clear 410 (naming this position) instead of silently skipping events.
CREATE TABLE events_purged (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    xid       xid8    NOT NULL,
    seq       bigint  NOT NULL
);
