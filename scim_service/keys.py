"""Typed keys for everything the application and its requests share (no string keys)."""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web

from scim_service.activity import ActivityLog
from scim_service.auth import Authenticator, Principal
from scim_service.config import Settings
from scim_service.events.emitter import Emitter
from scim_service.events.publisher import Publisher
from scim_service.events.pull import Feed
from scim_service.fairness import Gate
from scim_service.lifecycle import Lifecycle
from scim_service.metrics import LoopLagMonitor, Metrics
from scim_service.provisioning.credentials import AdminPrincipal
from scim_service.provisioning.guard import GuardPolicy

SETTINGS = web.AppKey("settings", Settings)
BASE_URL = web.AppKey("base_url", str)  # Settings.scim_base_url, computed once
AUTH = web.AppKey("auth", Authenticator)
POOL = web.AppKey("pool", asyncpg.Pool)
# Every request-path connection comes through it: acquire timeout, per-org limit, token rate.
GATE = web.AppKey("gate", Gate)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
ADMIN_DIGEST = web.AppKey("admin_digest", bytes)
EMITTER = web.AppKey("emitter", Emitter)
GUARD = web.AppKey("guard", GuardPolicy)  # the mass-deprovisioning guard's defaults
PUBLISHER = web.AppKey("publisher", Publisher)
# Wakes long-polling pull requests on the outbox NOTIFY (events/pull.py).
FEED = web.AppKey("feed", Feed)
METRICS = web.AppKey("metrics", Metrics)
METRICS_DIGEST = web.AppKey("metrics_digest", bytes)
LOOP_LAG = web.AppKey("loop_lag", LoopLagMonitor)
# The app a separate metrics listener reports on.
MAIN_APP = web.AppKey("main_app", web.Application)

# The activity log's queue (absent with SCIM_ACTIVITY_LOG=off and on the publisher's app).
ACTIVITY = web.AppKey("activity", ActivityLog)

# Set by the auth middleware on every authenticated SCIM request.
PRINCIPAL = web.RequestKey("principal", Principal)
# Set on every authenticated admin request: the credential's scope and organizations.
ADMIN_PRINCIPAL = web.RequestKey("admin_principal", AdminPrincipal)
REQUEST_ID = web.RequestKey("request_id", str)
# The raw body a handler read (read_json), for the activity log; and why a token failed.
REQUEST_BODY = web.RequestKey("request_body", bytes)
AUTH_FAILURE = web.RequestKey("auth_failure", str)
# The organization of a genuine token that was refused (revoked, expired, SCIM off).
AUTH_ORG = web.RequestKey("auth_org", uuid.UUID)
# Member ids a group write skipped (no user of the organization): the activity log's warning.
SKIPPED_MEMBERS = web.RequestKey("skipped_members", tuple)
