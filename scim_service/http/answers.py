"""The admin API's answers that wrap a list or a count: what the handlers encode, and what the
OpenAPI document describes (each is named by its operation in http/operations.py)."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from scim_service.activity import Entry
from scim_service.provisioning.audit import AuditEntry
from scim_service.provisioning.credentials import CredentialInfo
from scim_service.provisioning.endpoints import Endpoint
from scim_service.provisioning.outbox import DeadLetter, SinkStats
from scim_service.provisioning.tenants import Org, TokenInfo


class OrgList(msgspec.Struct):
    orgs: list[Org]


class TokenList(msgspec.Struct):
    tokens: list[TokenInfo]


class EventStats(msgspec.Struct):
    sinks: list[SinkStats]


class DeadLetters(msgspec.Struct):
    dead_letters: list[DeadLetter]


class Retried(msgspec.Struct):
    retried: list[uuid.UUID]


class Queued(msgspec.Struct):
    queued: int


class Discarded(msgspec.Struct):
    sink: str
    discarded: int


class Moved(msgspec.Struct):
    sink: str
    to: str
    moved: int


class SigningKey(msgspec.Struct):
    algorithm: Literal["ed25519"]
    public_key: str


class ActivityList(msgspec.Struct):
    entries: list[Entry]


class CredentialList(msgspec.Struct):
    credentials: list[CredentialInfo]


class RetriedCount(msgspec.Struct):
    retried: int


class EndpointList(msgspec.Struct):
    endpoints: list[Endpoint]


class AuditList(msgspec.Struct):
    entries: list[AuditEntry]
