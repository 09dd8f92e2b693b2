"""The admin API's operations, and the unauthenticated ones (health, metrics, this document)."""

from __future__ import annotations

from typing import Any

from scim_service.http.snapshots import MEMBERS_LIMIT, SNAPSHOT_LIMIT
from scim_service.openapi.bodies import ADMIN, JSON, ref
from scim_service.openapi.helpers import linked, ok, op, param, request_body


def admin_ops() -> dict[str, dict[str, Any]]:
    org = param("org_id", "path", "The organization id (a UUID)")
    endpoint = param("endpoint_id", "path", "The webhook endpoint id (a UUID)")

    def snapshot(most: int) -> list[dict[str, Any]]:
        return [
            param("page", "query", "next_page of the previous answer", format="uuid"),
            param("limit", "query", "Items per page", type="integer", minimum=1, maximum=most),
        ]

    def admin(
        summary: str,
        ok: dict[str, Any],
        op_id: str,
        *,
        params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
        errors: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        return op(
            summary,
            ok,
            tag="Admin",
            op_id=op_id,
            scim=False,
            params=params,
            body=body,
            errors=errors,
        )

    def answer(code: str, name: str, description: str) -> dict[str, Any]:
        return ok(code, name, description, scim=False)

    return {
        f"POST {ADMIN}/orgs": admin(
            "Create an organization",
            linked(
                answer("201", "Org", "The organization"),
                {
                    name: {"operationId": name, "parameters": {"org_id": "$response.body#/id"}}
                    for name in ("getOrg", "disableScim", "enableScim", "createToken", "listTokens")
                },
            ),
            "createOrg",
            body=request_body("CreateOrg"),
            errors=("409",),
        ),
        f"GET {ADMIN}/orgs": admin(
            "List organizations", answer("200", "OrgList", "Every organization"), "listOrgs"
        ),
        f"GET {ADMIN}/orgs/{{org_id}}": admin(
            "One organization",
            answer("200", "Org", "The organization"),
            "getOrg",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/scim/enable": admin(
            "Switch SCIM provisioning on for an organization",
            answer("200", "Org", "The organization"),
            "enableScim",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/scim/disable": admin(
            "Switch SCIM provisioning off (tokens are kept; SCIM answers 403)",
            answer("200", "Org", "The organization"),
            "disableScim",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/tokens": admin(
            "Create a SCIM token (shown once, in this answer only)",
            linked(
                answer("201", "CreatedToken", "The token, the SCIM base URL and the token's info"),
                {
                    "revokeToken": {
                        "operationId": "revokeToken",
                        "parameters": {"token_id": "$response.body#/info/id"},
                    }
                },
            ),
            "createToken",
            params=[org],
            body=request_body("CreateToken", required=False),
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/tokens": admin(
            "List an organization's tokens (never the tokens themselves)",
            answer("200", "TokenList", "The tokens"),
            "listTokens",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/credentials": admin(
            "Create a scoped admin credential (shown once, in this answer only)",
            linked(
                answer("201", "CreatedCredential", "The credential and its info"),
                {
                    "revokeCredential": {
                        "operationId": "revokeCredential",
                        "parameters": {"credential_id": "$response.body#/info/id"},
                    }
                },
            ),
            "createCredential",
            body=request_body("CreateCredential"),
            errors=("404",),
        ),
        f"GET {ADMIN}/credentials": admin(
            "List admin credentials (never the secrets, only their public prefixes)",
            answer("200", "CredentialList", "The credentials"),
            "listCredentials",
        ),
        f"DELETE {ADMIN}/credentials/{{credential_id}}": admin(
            "Revoke an admin credential (at once)",
            answer("200", "CredentialInfo", "The revoked credential's info"),
            "revokeCredential",
            params=[param("credential_id", "path", "The credential id (a UUID)")],
            errors=("404",),
        ),
        f"POST {ADMIN}/endpoints": admin(
            "Create a webhook endpoint; its signing secret is in this answer only",
            answer("201", "NewEndpoint", "The endpoint and its whsec_ secret"),
            "createEndpoint",
            body=request_body("CreateEndpoint"),
            errors=("409",),
        ),
        f"GET {ADMIN}/endpoints": admin(
            "List webhook endpoints (never their secrets)",
            answer("200", "EndpointList", "The endpoints"),
            "listEndpoints",
        ),
        f"GET {ADMIN}/endpoints/{{endpoint_id}}": admin(
            "One webhook endpoint",
            answer("200", "Endpoint", "The endpoint"),
            "getEndpoint",
            params=[endpoint],
            errors=("404",),
        ),
        f"PATCH {ADMIN}/endpoints/{{endpoint_id}}": admin(
            "Change a webhook endpoint's URL, filters or pause it (a paused one keeps its place)",
            answer("200", "Endpoint", "The endpoint"),
            "changeEndpoint",
            params=[endpoint],
            body=request_body("ChangeEndpoint"),
            errors=("404",),
        ),
        f"DELETE {ADMIN}/endpoints/{{endpoint_id}}": admin(
            "Delete a webhook endpoint, its position and every event it still owed",
            {"204": {"description": "Deleted"}},
            "deleteEndpoint",
            params=[endpoint],
            errors=("404",),
        ),
        f"POST {ADMIN}/endpoints/{{endpoint_id}}/dead-letters/retry": admin(
            "Attempt a webhook endpoint's dead letters again",
            answer("200", "RetriedCount", "How many dead letters are due again"),
            "retryEndpointDeadLetters",
            params=[endpoint],
            errors=("404",),
        ),
        f"GET {ADMIN}/audit": admin(
            "The admin audit trail, oldest first (an org admin: its organization's entries)",
            answer("200", "AuditList", "Entries"),
            "listAudit",
            params=[
                param("org_id", "query", "Only this organization's entries", format="uuid"),
                param("after", "query", "Only entries after this entry id", type="integer"),
                param(
                    "limit",
                    "query",
                    "At most this many (default 100, at most 1000)",
                    type="integer",
                    minimum=1,
                    maximum=1000,
                ),
            ],
            errors=("404",),
        ),
        f"DELETE {ADMIN}/tokens/{{token_id}}": admin(
            "Revoke a token (at once, on every replica)",
            answer("200", "TokenInfo", "The revoked token's info"),
            "revokeToken",
            params=[param("token_id", "path", "The token id (a UUID)")],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/users/{{user_id}}/setup-complete": admin(
            "The user finished account setup (created their master key)",
            answer("200", "User", "The user, SCIM representation"),
            "completeUserSetup",
            params=[org, param("user_id", "path", "The user id (a UUID)")],
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/status": admin(
            "Directory status: SCIM on/off, tokens, last success per IdP, errors, events, guard",
            answer("200", "OrgStatus", "The status"),
            "orgStatus",
            params=[org],
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/activity": admin(
            "The organization's SCIM activity log (oldest first)",
            answer("200", "ActivityList", "Entries"),
            "listActivity",
            params=[
                org,
                param("errors", "query", "true: only failed requests"),
                param(
                    "after", "query", "Only entries after this entry id (to follow)", type="integer"
                ),
                param(
                    "limit",
                    "query",
                    "At most this many (default 100, at most 1000)",
                    type="integer",
                ),
            ],
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/roles": admin(
            "Role mappings: the default role and IdP groups mapped to roles, by priority",
            answer("200", "RoleState", "The role mappings, each with the group it names now"),
            "getRoles",
            params=[org],
            errors=("404",),
        ),
        f"PUT {ADMIN}/orgs/{{org_id}}/roles": admin(
            "Replace the role mappings (a user's role: their highest-priority mapped group's "
            "role, else the default)",
            answer("200", "RoleState", "The role mappings"),
            "setRoles",
            params=[org],
            body=request_body("RoleConfig"),
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/guard": admin(
            "The mass-deprovisioning guard: threshold, state and held events",
            answer("200", "GuardState", "The guard"),
            "getGuard",
            params=[org],
            errors=("404",),
        ),
        f"PATCH {ADMIN}/orgs/{{org_id}}/guard": admin(
            "Override the guard's threshold for this organization",
            answer("200", "GuardState", "The guard"),
            "configureGuard",
            params=[org],
            body=request_body("GuardSettings"),
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/guard/release": admin(
            "Deliver every held change (in order per resource) and re-arm the guard",
            answer("200", "GuardOutcome", "How many resources and events were released"),
            "releaseGuard",
            params=[org],
            errors=("404", "503"),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/guard/reject": admin(
            "Reject the held changes: restore the held users and groups, drop their held "
            "events for good (no consumer ever sees them), re-arm the guard",
            answer("200", "GuardOutcome", "How many resources were restored, events dropped"),
            "rejectGuard",
            params=[org],
            errors=("404", "409", "503"),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/guard/discard": admin(
            "The former name of guard/reject (same behaviour)",
            answer("200", "GuardOutcome", "How many resources were restored, events dropped"),
            "discardGuard",
            params=[org],
            errors=("404", "409", "503"),
        ),
        f"GET {ADMIN}/events": admin(
            "Pull events in one total order after a cursor (optionally waiting for new ones)",
            answer("200", "EventsPage", "CloudEvents as pushed, and the next cursor"),
            "listEvents",
            params=[
                param("after", "query", "A next_cursor or events_cursor from an earlier answer"),
                param(
                    "until",
                    "query",
                    "Serve no event past this cursor (e.g. a digest's events_cursor: catch up "
                    "exactly to it); next_cursor then stops there",
                ),
                param("limit", "query", "Events per page", type="integer", minimum=1, maximum=1000),
                param("org_id", "query", "Only this organization's events", format="uuid"),
                param("types", "query", "Comma-separated event types"),
                param(
                    "wait",
                    "query",
                    "Seconds to wait for a new event when there is none",
                    type="number",
                    minimum=0,
                    maximum=30,
                ),
            ],
            errors=("404", "410"),
        ),
        f"GET {ADMIN}/events/schemas": admin(
            "JSON Schema of every event type and the AsyncAPI 3.0 document",
            answer("200", "EventSchemas", "Generated from the event structs"),
            "eventSchemas",
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/users": admin(
            "Bootstrap snapshot: one page of an organization's users with their versions",
            answer("200", "UsersSnapshot", "Users by id; events_cursor on the first page"),
            "snapshotUsers",
            params=[org, *snapshot(SNAPSHOT_LIMIT)],
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/groups": admin(
            "Bootstrap snapshot: one page of an organization's groups with their versions",
            answer("200", "GroupsSnapshot", "Groups by id; events_cursor on the first page"),
            "snapshotGroups",
            params=[org, *snapshot(SNAPSHOT_LIMIT)],
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/groups/{{group_id}}/members": admin(
            "Bootstrap snapshot: one page of a group's member ids",
            answer("200", "MembersSnapshot", "Member ids; events_cursor on the first page"),
            "snapshotMembers",
            params=[
                org,
                param("group_id", "path", "The group id (a UUID)"),
                *snapshot(MEMBERS_LIMIT),
            ],
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/digest": admin(
            "State digest: SHA-256 of every user's and group's id and version, and the cursor "
            "it is exact at",
            answer("200", "Digest", "Compare with the digest of your copy at events_cursor"),
            "orgDigest",
            params=[org],
            errors=("404", "503"),
        ),
        f"GET {ADMIN}/events/stats": admin(
            "Outbox backlog per sink", answer("200", "EventStats", "Per sink"), "eventStats"
        ),
        f"GET {ADMIN}/events/dead-letters": admin(
            "Dead-lettered events with their last error",
            answer("200", "DeadLetters", "At most 500 events"),
            "listDeadLetters",
            params=[param("sink", "query", "Only this sink")],
        ),
        f"POST {ADMIN}/events/dead-letters/retry": admin(
            "Give dead-lettered events a fresh set of attempts",
            answer("200", "Retried", "The ids queued again"),
            "retryDeadLetters",
            body=request_body("RetryRequest", required=False),
        ),
        f"POST {ADMIN}/events/replay": admin(
            "Re-send delivered events (same ids) from a time or an event",
            answer("200", "Queued", "How many deliveries were queued"),
            "replayEvents",
            body=request_body("ReplayRequest"),
            errors=("404",),
        ),
        f"POST {ADMIN}/events/orphans/{{sink}}/move": admin(
            "Hand the events queued for a sink no longer configured to a configured sink",
            answer("200", "Moved", "How many events were handed on (fresh attempts, in order)"),
            "moveOrphanedEvents",
            params=[param("sink", "path", "The sink no longer configured")],
            body=request_body("MoveRequest"),
            errors=("409",),
        ),
        f"POST {ADMIN}/events/orphans/{{sink}}/discard": admin(
            "Drop the events queued for a sink no longer configured (logged)",
            answer("200", "Discarded", "How many queued deliveries were dropped"),
            "discardOrphanedEvents",
            params=[param("sink", "path", "The sink no longer configured")],
            errors=("409",),
        ),
        f"GET {ADMIN}/events/signing-key": admin(
            "The Ed25519 public key for v1a webhook signatures",
            answer("200", "SigningKey", "The whpk_ public key"),
            "signingKey",
            errors=("404",),
        ),
    }


def plain_ops() -> dict[str, dict[str, Any]]:
    def probe(summary: str, op_id: str, *, ready: bool = False) -> dict[str, Any]:
        answers: dict[str, Any] = {
            "200": {"description": "OK", "content": {JSON: {"schema": ref("Health")}}}
        }
        if ready:
            answers["503"] = {
                "description": "Not ready (draining, database unreachable, migrations pending)",
                "content": {JSON: {"schema": ref("Health")}},
            }
        return {
            "tags": ["Health"],
            "summary": summary,
            "operationId": op_id,
            "security": [],
            "responses": answers,
        }

    return {
        "GET /healthz": probe("Liveness: the process and its event loop answer", "healthz"),
        "GET /readyz": probe(
            "Readiness: database reachable, migrations current, not draining",
            "readyz",
            ready=True,
        ),
        "GET /metrics": {
            "tags": ["Health"],
            "summary": "Prometheus metrics (bearer SCIM_METRICS_TOKEN when set)",
            "operationId": "metrics",
            "security": [{}, {"metricsBearerAuth": []}],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": {"description": "SCIM_METRICS_TOKEN is set and was not sent"},
            },
        },
        "GET /openapi.json": {
            "tags": ["Health"],
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {JSON: {"schema": {"type": "object"}}},
                }
            },
        },
    }
