"""SCIM discovery endpoints (RFC 7644 §4): what this server supports, said truthfully."""

from __future__ import annotations

from aiohttp import web

from scim_service.http.responses import scim_json
from scim_service.keys import SETTINGS
from scim_service.scim import discovery


async def service_provider_config(request: web.Request) -> web.Response:
    return scim_json(discovery.service_provider_config(request.app[SETTINGS].scim_base_url))
