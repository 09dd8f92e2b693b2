-- `emails.value sw "..."` as a btree range scan. A user's email values are an array
-- (users.emails), and a btree indexes one value per row, so until now a prefix filter went
-- through the trigram index over all values joined (users_emails_trgm), whose cost follows
-- the posting lists of common trigrams (about 1.5-2 ms a scan at 100,000 users, twice per
-- request: count and page). This table holds one row per (user, lower-cased email value),
-- kept by triggers in the same transaction as the user row, so a prefix is a range on
-- (org_id, value) like `userName sw`. It is derived data: rebuilt from users.emails below.
CREATE TABLE user_emails (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id   uuid NOT NULL,
    value    text NOT NULL,
    PRIMARY KEY (user_id, value)
);
CREATE INDEX user_emails_org_value ON user_emails (org_id, value text_pattern_ops);

CREATE FUNCTION scim_user_emails_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM user_emails WHERE user_id = OLD.id;
    END IF;
    INSERT INTO user_emails (user_id, org_id, value)
    SELECT DISTINCT NEW.id, NEW.org_id, v FROM unnest(NEW.emails) AS v;
    RETURN NULL;
END $$;

-- users.emails is a generated column: AFTER triggers see its new value.
CREATE TRIGGER users_emails_insert
AFTER INSERT ON users
FOR EACH ROW WHEN (cardinality(NEW.emails) > 0)
EXECUTE FUNCTION scim_user_emails_sync();

CREATE TRIGGER users_emails_update
AFTER UPDATE ON users
FOR EACH ROW WHEN (OLD.emails IS DISTINCT FROM NEW.emails OR OLD.org_id IS DISTINCT FROM NEW.org_id)
EXECUTE FUNCTION scim_user_emails_sync();

INSERT INTO user_emails (user_id, org_id, value)
SELECT DISTINCT u.id, u.org_id, v FROM users u, unnest(u.emails) AS v;
