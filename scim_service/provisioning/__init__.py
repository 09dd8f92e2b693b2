"""The service layer: every operation the SCIM API, the admin API and the CLI perform.

Users and groups (`users`, `groups`: input → engines (scim/) → storage (store/) in one
transaction; `search` across both), organizations and tokens (`tenants`), the outbox
(`outbox`), the mass-deprovisioning guard (`guard`), an organization's status and activity log
(`status`), the bootstrap snapshot (`snapshot`) and readiness (`readiness`).

No HTTP here: handlers decode requests and call these functions with a connection (and, for
SCIM, the organization id taken from the caller's token); the CLI calls the same functions.
Handlers never call store/ themselves (tests/repo/test_thin_handlers.py).
"""
