"""Admin API of scoped admin credentials (issue 22; scope `operator`): thin handlers over
provisioning/credentials.py. The secret is in the creation answer only."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from scim_service.http.admin import path_uuid
from scim_service.http.responses import admin_json, connection, read_json
from scim_service.provisioning import credentials
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
    return admin_json({"credentials": found})


async def revoke_credential(request: web.Request) -> web.Response:
    credential_id = path_uuid(request, "credential_id", "Credential")
    async with connection(request) as conn:
        info = await credentials.revoke(conn, credential_id)
    return admin_json(info)
