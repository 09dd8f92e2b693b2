"""The service layer: every operation the admin API, the SCIM API and the CLI perform.

Users and groups (`users`, `groups`: input → engines (scim/) → storage (store/) in one
transaction), organizations and tokens (`tenants`), the outbox (`outbox`), the
mass-deprovisioning guard (`guard`), an organization's status and activity (`status`), the
snapshot and search reads (`snapshot`, `search`). No HTTP here: handlers decode requests and
call these functions with a connection (and, for SCIM, the organization id taken from the
caller's token); the CLI calls the same functions. Only this layer calls `store/`.
"""
