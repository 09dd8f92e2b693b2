-- The admin audit trail (issue 22). See scim_service/provisioning/audit.py.

-- name: audit_insert
INSERT INTO admin_audit (actor, credential_id, action, org_id, target, outcome, status, detail,
                         request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: audit_list
-- The newest $3 entries (of organization $1 when not NULL) after id $2, oldest first.
SELECT * FROM (
    SELECT id, at, actor, credential_id, action, org_id, target, outcome, status, detail,
           request_id
    FROM admin_audit
    WHERE ($1::uuid IS NULL OR org_id = $1) AND id > $2
    ORDER BY id DESC
    LIMIT $3
) AS page
ORDER BY id;

-- name: audit_prune_old
DELETE FROM admin_audit
WHERE id IN (SELECT id FROM admin_audit WHERE at < $1 ORDER BY at LIMIT $2);
