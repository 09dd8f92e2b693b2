"""Every admin API operation (`/admin/v1`), declared once: method, path, handler, the scopes
that may call it, its request and answer types, summary, errors, parameters, and the action
name of its audit entry. The route table (routes.py), the scope check (http/authz.py), the
audit trail (http/audit.py) and the OpenAPI document (openapi/admin_paths.py) are all read
from `OPERATIONS`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from scim_service.events import pull as events_pull
from scim_service.http import admin, answers, credentials, endpoints, events, snapshots
from scim_service.http.admin import (
    CreatedToken,
    CreateOrg,
    CreateToken,
    MoveRequest,
    ReplayRequest,
    RetryRequest,
)
from scim_service.http.credentials import CreateCredential, CreatedCredential
from scim_service.http.endpoints import CreateEndpoint
from scim_service.http.events import EventSchemas, EventsPage
from scim_service.provisioning import endpoints as endpoint_service
from scim_service.provisioning import guard, roles, snapshot, status
from scim_service.provisioning.credentials import CredentialInfo
from scim_service.provisioning.tenants import Org, TokenInfo

ADMIN = "/admin/v1"
OPERATOR = ("operator",)
ORG_ADMIN = ("operator", "org:admin")
EVENTS_READ = ("operator", "org:admin", "events:read")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    """A path or query parameter; `schema` is its JSON Schema (default: a string)."""

    name: str
    where: Literal["path", "query"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """Below /admin/v1, in the route table's spelling (`/orgs/{org_id}`)."""
    handler: Handler
    op_id: str
    summary: str
    answer: type | str | None
    """The answer body's type (a name: a schema of the document, e.g. "User"; None: no body)."""
    answer_text: str
    status: str = "200"
    scopes: tuple[str, ...] = OPERATOR
    params: tuple[Param, ...] = ()
    body: type | None = None
    body_required: bool = True
    errors: tuple[str, ...] = ()
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """operationId → its parameters taken from this answer (OpenAPI links)."""
    action: str | None = None
    """The audit trail's name of what it changes (None: reads only)."""

    @property
    def key(self) -> str:
        """ "METHOD /admin/v1/path/{param}", as the router names the route."""
        return f"{self.method} {ADMIN}{self.path}"


def path(name: str, what: str) -> Param:
    return Param(name, "path", f"The {what} id (a UUID)")


def query(name: str, description: str, **schema: Any) -> Param:
    return Param(name, "query", description, schema)


ORG = Param("org_id", "path", "The organization id (a UUID)")
ENDPOINT = Param("endpoint_id", "path", "The webhook endpoint id (a UUID)")
SINK = Param("sink", "path", "The sink no longer configured")
GUARD_ANSWER = "How many resources were restored, events dropped"


def _page(most: int) -> tuple[Param, ...]:
    return (
        query("page", "next_page of the previous answer", format="uuid"),
        query("limit", "Items per page", type="integer", minimum=1, maximum=most),
    )


_ORG_LINKS = {
    name: {"org_id": "$response.body#/id"}
    for name in ("getOrg", "disableScim", "enableScim", "createToken", "listTokens")
}
_ORG_OPS: list[Operation] = [
    Operation(
        "POST",
        "/orgs",
        admin.create_org,
        "createOrg",
        "Create an organization",
        Org,
        "The organization",
        status="201",
        body=CreateOrg,
        errors=("409",),
        links=_ORG_LINKS,
        action="org.create",
    ),
    Operation(
        "GET",
        "/orgs",
        admin.list_orgs,
        "listOrgs",
        "List organizations",
        answers.OrgList,
        "Every organization",
    ),
    Operation(
        "GET",
        "/orgs/{org_id}",
        admin.get_org,
        "getOrg",
        "One organization",
        Org,
        "The organization",
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404",),
    ),
    Operation(
        "POST",
        "/orgs/{org_id}/scim/enable",
        admin.enable_scim,
        "enableScim",
        "Switch SCIM provisioning on for an organization",
        Org,
        "The organization",
        params=(ORG,),
        errors=("404",),
        action="org.scim_enable",
    ),
    Operation(
        "POST",
        "/orgs/{org_id}/scim/disable",
        admin.disable_scim,
        "disableScim",
        "Switch SCIM provisioning off (tokens are kept; SCIM answers 403)",
        Org,
        "The organization",
        params=(ORG,),
        errors=("404",),
        action="org.scim_disable",
    ),
    Operation(
        "POST",
        "/orgs/{org_id}/tokens",
        admin.create_token,
        "createToken",
        "Create a SCIM token (shown once, in this answer only)",
        CreatedToken,
        "The token, the SCIM base URL and the token's info",
        status="201",
        scopes=ORG_ADMIN,
        params=(ORG,),
        body=CreateToken,
        body_required=False,
        errors=("404",),
        links={"revokeToken": {"token_id": "$response.body#/info/id"}},
        action="token.create",
    ),
    Operation(
        "GET",
        "/orgs/{org_id}/tokens",
        admin.list_tokens,
        "listTokens",
        "List an organization's tokens (never the tokens themselves)",
        answers.TokenList,
        "The tokens",
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404",),
    ),
    # An org admin: its own organization's tokens only.
    Operation(
        "DELETE",
        "/tokens/{token_id}",
        admin.revoke_token,
        "revokeToken",
        "Revoke a token (at once, on every replica)",
        TokenInfo,
        "The revoked token's info",
        scopes=ORG_ADMIN,
        params=(path("token_id", "token"),),
        errors=("404",),
        action="token.revoke",
    ),
    Operation(
        "POST",
        "/orgs/{org_id}/users/{user_id}/setup-complete",
        admin.complete_user_setup,
        "completeUserSetup",
        "The user finished account setup (created their master key)",
        "User",
        "The user, SCIM representation",
        scopes=ORG_ADMIN,
        params=(ORG, path("user_id", "user")),
        errors=("404",),
        action="user.setup_complete",
    ),
    Operation(
        "GET",
        "/orgs/{org_id}/status",
        admin.org_status,
        "orgStatus",
        "Directory status: SCIM on/off, tokens, last success per IdP, errors, events, guard",
        status.OrgStatus,
        "The status",
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404",),
    ),
    Operation(
        "GET",
        "/orgs/{org_id}/activity",
        admin.list_activity,
        "listActivity",
        "The organization's SCIM activity log (oldest first)",
        answers.ActivityList,
        "Entries",
        scopes=ORG_ADMIN,
        errors=("404",),
        params=(
            ORG,
            query("errors", "true: only failed requests"),
            query("after", "Only entries after this entry id (to follow)", type="integer"),
            query("limit", "At most this many (default 100, at most 1000)", type="integer"),
        ),
    ),
]


_GUARD = "/orgs/{org_id}/guard"
_POLICY_OPS: list[Operation] = [
    Operation(
        "GET",
        "/orgs/{org_id}/roles",
        admin.get_roles,
        "getRoles",
        "Role mappings: the default role and IdP groups mapped to roles, by priority",
        roles.RoleState,
        "The role mappings, each with the group it names now",
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404",),
    ),
    Operation(
        "PUT",
        "/orgs/{org_id}/roles",
        admin.set_roles,
        "setRoles",
        "Replace the role mappings (a user's role: their highest-priority mapped "
        "group's role, else the default)",
        roles.RoleState,
        "The role mappings",
        scopes=ORG_ADMIN,
        params=(ORG,),
        body=roles.RoleConfig,
        errors=("404",),
        action="roles.set",
    ),
    Operation(
        "GET",
        _GUARD,
        admin.guard_state,
        "getGuard",
        "The mass-deprovisioning guard: threshold, state and held events",
        guard.GuardState,
        "The guard",
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404",),
    ),
    Operation(
        "PATCH",
        _GUARD,
        admin.configure_guard,
        "configureGuard",
        "Override the guard's threshold for this organization",
        guard.GuardState,
        "The guard",
        scopes=ORG_ADMIN,
        params=(ORG,),
        body=guard.GuardSettings,
        errors=("404",),
        action="guard.configure",
    ),
    Operation(
        "POST",
        f"{_GUARD}/release",
        admin.release_guard,
        "releaseGuard",
        "Deliver every held change (in order per resource) and re-arm the guard",
        guard.GuardOutcome,
        "How many resources and events were released",
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404", "503"),
        action="guard.release",
    ),
    Operation(
        "POST",
        f"{_GUARD}/reject",
        admin.reject_guard,
        "rejectGuard",
        "Reject the held changes: restore the held users and groups, drop their held "
        "events for good (no consumer ever sees them), re-arm the guard",
        guard.GuardOutcome,
        GUARD_ANSWER,
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404", "409", "503"),
        action="guard.reject",
    ),
    Operation(
        "POST",
        f"{_GUARD}/discard",
        admin.reject_guard,
        "discardGuard",
        "The former name of guard/reject (same behaviour)",
        guard.GuardOutcome,
        GUARD_ANSWER,
        scopes=ORG_ADMIN,
        params=(ORG,),
        errors=("404", "409", "503"),
        action="guard.discard",
    ),
]


# The pull API, the bootstrap snapshots and the digest (events:read).
_CONSUMER_OPS: list[Operation] = [
    Operation(
        "GET",
        "/orgs/{org_id}/users",
        snapshots.snapshot_users,
        "snapshotUsers",
        "Bootstrap snapshot: one page of an organization's users with their versions",
        snapshot.UsersSnapshot,
        "Users by id; events_cursor on the first page",
        scopes=EVENTS_READ,
        params=(ORG, *_page(snapshots.SNAPSHOT_LIMIT)),
        errors=("404",),
    ),
    Operation(
        "GET",
        "/orgs/{org_id}/groups",
        snapshots.snapshot_groups,
        "snapshotGroups",
        "Bootstrap snapshot: one page of an organization's groups with their versions",
        snapshot.GroupsSnapshot,
        "Groups by id; events_cursor on the first page",
        scopes=EVENTS_READ,
        params=(ORG, *_page(snapshots.SNAPSHOT_LIMIT)),
        errors=("404",),
    ),
    Operation(
        "GET",
        "/orgs/{org_id}/groups/{group_id}/members",
        snapshots.snapshot_members,
        "snapshotMembers",
        "Bootstrap snapshot: one page of a group's member ids",
        snapshot.MembersSnapshot,
        "Member ids; events_cursor on the first page",
        scopes=EVENTS_READ,
        params=(ORG, path("group_id", "group"), *_page(snapshots.MEMBERS_LIMIT)),
        errors=("404",),
    ),
    Operation(
        "GET",
        "/orgs/{org_id}/digest",
        snapshots.org_digest,
        "orgDigest",
        "State digest: SHA-256 of every user's and group's id and version, and the "
        "cursor it is exact at",
        snapshot.Digest,
        "Compare with the digest of your copy at events_cursor",
        scopes=EVENTS_READ,
        params=(ORG,),
        errors=("404", "503"),
    ),
    Operation(
        "GET",
        "/events",
        events.list_events,
        "listEvents",
        "Pull events in one total order after a cursor (optionally waiting for new ones)",
        EventsPage,
        "CloudEvents as pushed, and the next cursor",
        scopes=EVENTS_READ,
        errors=("404", "410"),
        params=(
            query("after", "A next_cursor or events_cursor from an earlier answer"),
            query(
                "until",
                "Serve no event past this cursor (e.g. a digest's "
                "events_cursor: catch up exactly to it); next_cursor then stops "
                "there",
            ),
            query(
                "limit",
                "Events per page",
                type="integer",
                minimum=1,
                maximum=events_pull.MAX_LIMIT,
            ),
            query("org_id", "Only this organization's events", format="uuid"),
            query("types", "Comma-separated event types"),
            query(
                "wait",
                "Seconds to wait for a new event when there is none",
                type="number",
                minimum=0,
                maximum=int(events_pull.MAX_WAIT),
            ),
        ),
    ),
    Operation(
        "GET",
        "/events/schemas",
        events.event_schemas,
        "eventSchemas",
        "JSON Schema of every event type and the AsyncAPI 3.0 document",
        EventSchemas,
        "Generated from the event structs",
        scopes=EVENTS_READ,
    ),
    Operation(
        "GET",
        "/events/signing-key",
        admin.signing_key,
        "signingKey",
        "The Ed25519 public key for v1a webhook signatures",
        answers.SigningKey,
        "The whpk_ public key",
        scopes=EVENTS_READ,
        errors=("404",),
    ),
]


_OUTBOX_OPS: list[Operation] = [
    Operation(
        "GET",
        "/events/stats",
        admin.event_stats,
        "eventStats",
        "Outbox backlog per sink",
        answers.EventStats,
        "Per sink",
    ),
    Operation(
        "GET",
        "/events/dead-letters",
        admin.list_dead_letters,
        "listDeadLetters",
        "Dead-lettered events with their last error",
        answers.DeadLetters,
        "At most 500 events",
        params=(query("sink", "Only this sink"),),
    ),
    Operation(
        "POST",
        "/events/dead-letters/retry",
        admin.retry_dead_letters,
        "retryDeadLetters",
        "Give dead-lettered events a fresh set of attempts",
        answers.Retried,
        "The ids queued again",
        body=RetryRequest,
        body_required=False,
        action="events.retry",
    ),
    Operation(
        "POST",
        "/events/replay",
        admin.replay_events,
        "replayEvents",
        "Re-send delivered events (same ids) from a time or an event",
        answers.Queued,
        "How many deliveries were queued",
        body=ReplayRequest,
        errors=("404",),
        action="events.replay",
    ),
    Operation(
        "POST",
        "/events/orphans/{sink}/move",
        admin.move_orphans,
        "moveOrphanedEvents",
        "Hand the events queued for a sink no longer configured to a configured sink",
        answers.Moved,
        "How many events were handed on (fresh attempts, in order)",
        params=(SINK,),
        body=MoveRequest,
        errors=("409",),
        action="events.orphans_move",
    ),
    Operation(
        "POST",
        "/events/orphans/{sink}/discard",
        admin.discard_orphans,
        "discardOrphanedEvents",
        "Drop the events queued for a sink no longer configured (logged)",
        answers.Discarded,
        "How many queued deliveries were dropped",
        params=(SINK,),
        errors=("409",),
        action="events.orphans_discard",
    ),
]


_CREDENTIAL_OPS: list[Operation] = [
    Operation(
        "POST",
        "/credentials",
        credentials.create_credential,
        "createCredential",
        "Create a scoped admin credential (shown once, in this answer only)",
        CreatedCredential,
        "The credential and its info",
        status="201",
        body=CreateCredential,
        errors=("404",),
        links={"revokeCredential": {"credential_id": "$response.body#/info/id"}},
        action="credential.create",
    ),
    Operation(
        "GET",
        "/credentials",
        credentials.list_credentials,
        "listCredentials",
        "List admin credentials (never the secrets, only their public prefixes)",
        answers.CredentialList,
        "The credentials",
    ),
    Operation(
        "DELETE",
        "/credentials/{credential_id}",
        credentials.revoke_credential,
        "revokeCredential",
        "Revoke an admin credential (at once)",
        CredentialInfo,
        "The revoked credential's info",
        params=(path("credential_id", "credential"),),
        errors=("404",),
        action="credential.revoke",
    ),
    # An org admin sees its organization's entries.
    Operation(
        "GET",
        "/audit",
        credentials.list_audit,
        "listAudit",
        "The admin audit trail, oldest first (an org admin: its organization's entries)",
        answers.AuditList,
        "Entries",
        scopes=ORG_ADMIN,
        errors=("404",),
        params=(
            query("org_id", "Only this organization's entries", format="uuid"),
            query("after", "Only entries after this entry id", type="integer"),
            query(
                "limit",
                "At most this many (default 100, at most 1000)",
                type="integer",
                minimum=1,
                maximum=1000,
            ),
        ),
    ),
]


_ENDPOINT = "/endpoints/{endpoint_id}"
_ENDPOINT_OPS: list[Operation] = [
    Operation(
        "POST",
        "/endpoints",
        endpoints.create_endpoint,
        "createEndpoint",
        "Create a webhook endpoint; its signing secret is in this answer only",
        endpoint_service.NewEndpoint,
        "The endpoint and its whsec_ secret",
        status="201",
        body=CreateEndpoint,
        errors=("409",),
        action="endpoint.create",
    ),
    # An org admin: those that carry its organization's events.
    Operation(
        "GET",
        "/endpoints",
        endpoints.list_endpoints,
        "listEndpoints",
        "List webhook endpoints (never their secrets)",
        answers.EndpointList,
        "The endpoints",
        scopes=ORG_ADMIN,
    ),
    Operation(
        "GET",
        _ENDPOINT,
        endpoints.get_endpoint,
        "getEndpoint",
        "One webhook endpoint",
        endpoint_service.Endpoint,
        "The endpoint",
        params=(ENDPOINT,),
        errors=("404",),
    ),
    Operation(
        "PATCH",
        _ENDPOINT,
        endpoints.change_endpoint,
        "changeEndpoint",
        "Change a webhook endpoint's URL, filters or pause it (a paused one keeps its place)",
        endpoint_service.Endpoint,
        "The endpoint",
        params=(ENDPOINT,),
        body=endpoint_service.ChangeEndpoint,
        errors=("404",),
        action="endpoint.change",
    ),
    Operation(
        "DELETE",
        _ENDPOINT,
        endpoints.delete_endpoint,
        "deleteEndpoint",
        "Delete a webhook endpoint, its position and every event it still owed",
        None,
        "Deleted",
        status="204",
        params=(ENDPOINT,),
        errors=("404",),
        action="endpoint.delete",
    ),
    Operation(
        "POST",
        f"{_ENDPOINT}/dead-letters/retry",
        endpoints.retry_endpoint_dead_letters,
        "retryEndpointDeadLetters",
        "Attempt a webhook endpoint's dead letters again",
        answers.RetriedCount,
        "How many dead letters are due again",
        params=(ENDPOINT,),
        errors=("404",),
        action="endpoint.retry",
    ),
]


OPERATIONS: tuple[Operation, ...] = (
    *_ORG_OPS,
    *_POLICY_OPS,
    *_CONSUMER_OPS,
    *_OUTBOX_OPS,
    *_CREDENTIAL_OPS,
    *_ENDPOINT_OPS,
)
_BY_KEY = {op.key: op for op in OPERATIONS}
OPEN_TO_MORE = sum(op.scopes != OPERATOR for op in OPERATIONS)
"""How many operations a credential other than operator may call."""
ACTIONS = {op.key: op.action for op in OPERATIONS if op.action is not None}
"""Route → the audit trail's name of its action (the CLI's commands use the same names)."""


def scopes_of(operation: str) -> tuple[str, ...]:
    """The scopes that may call "METHOD /path/{param}" (the route table's spelling); an
    operation not declared here needs `operator`."""
    op = _BY_KEY.get(operation)
    return OPERATOR if op is None else op.scopes
