"""Admin API of scoped admin credentials (issue 22; scope `operator`) and of the audit trail
(`GET /admin/v1/audit`: operator; an org admin sees its organization's entries): thin handlers
over provisioning/credentials.py and provisioning/audit.py. A credential's secret is in its
creation answer only."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from scim_service import errors
from scim_service.http import query
from scim_service.http.admin import path_uuid
from scim_service.http.answers import AuditList, CredentialList
from scim_service.http.responses import admin_json, connection, read_json
from scim_service.keys import ADMIN_PRINCIPAL
from scim_service.provisioning import audit, credentials
from scim_service.provisioning.credentials import CredentialInfo


class CreateCredential(msgspec.Struct, forbid_unknown_fields=True):
    scope: str
    org_ids: list[uuid.UUID] | None = None
    event_types: list[str] | None = None
    description: str = ""
    ttl_days: int | None = None


class CreatedCredential(msgspec.Struct, kw_only=True):
    """The creation answer: the credential appears here once and is never shown again."""

    token: str
    info: CredentialInfo


async def create_credential(request: web.Request) -> web.Response:
    body = await read_json(request, CreateCredential)
    async with connection(request) as conn:
        new = await credentials.create(
            conn,
            body.scope,
            org_ids=body.org_ids,
            event_types=body.event_types,
            description=body.description,
            ttl_days=body.ttl_days,
        )
    return admin_json(CreatedCredential(token=new.token, info=new.info), status=201)


async def list_credentials(request: web.Request) -> web.Response:
    async with connection(request) as conn:
        found = await credentials.list_all(conn)
    return admin_json(CredentialList(found))


async def revoke_credential(request: web.Request) -> web.Response:
    credential_id = path_uuid(request, "credential_id", "Credential")
    async with connection(request) as conn:
        info = await credentials.revoke(conn, credential_id)
    return admin_json(info)


async def list_audit(request: web.Request) -> web.Response:
    """GET /admin/v1/audit?org_id=&after=&limit= (oldest first; an org admin: its own)."""
    who = request[ADMIN_PRINCIPAL]
    org_id = query.uuid_of(request, "org_id")
    if who.scope != "operator":
        if org_id is not None and not who.sees(org_id):
            raise errors.NotFound(f"Organization {org_id} not found")
        org_id = org_id or next(iter(who.org_ids))
    after, limit = query.whole(request, "after", 0), query.whole(request, "limit", 100)
    async with connection(request) as conn:
        found = await audit.entries(conn, org_id=org_id, after=after, limit=limit)
    return admin_json(AuditList(found))
