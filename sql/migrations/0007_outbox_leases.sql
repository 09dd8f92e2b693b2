-- Leased claims (issue 11): a publisher claims a batch in one short transaction that counts the
-- attempt and writes a lease (who, until when), delivers with no transaction open, and records
-- each outcome in another short transaction. A publisher that dies mid-delivery leaves leases
-- that expire; the rows are then claimable again (same event ids: at-least-once). A row with a
-- live lease still exists, so it holds back the later versions of its resource exactly like a
-- pending retry or a dead letter (see store/outbox.py).
ALTER TABLE outbox ADD COLUMN lease_owner text;
ALTER TABLE outbox ADD COLUMN lease_until timestamptz;
