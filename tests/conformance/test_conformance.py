"""RFC 7643/7644 conformance as judged by an outside tool: scim2-tester.

The tool is the engine behind scim2-cli's `scim2 --url URL -h "Authorization: Bearer TOKEN"
test`; this test drives its Python API (`scim2_tester.check_server`) to get one result object
per check. The real app listens on a real TCP port of 127.0.0.1; the checker runs in a worker
thread with its own blocking HTTP client (httpx2, the bearer token in its default headers), so
the server's event loop keeps serving. The tool discovers everything by itself
(ServiceProviderConfig, ResourceTypes, Schemas) and then creates, reads, searches, replaces,
patches and deletes Users and Groups.

Every check must be SUCCESS, with one narrow exception: KNOWN_TOOL_FALSE_POSITIVES, checks in
which scim2-tester itself departs from the RFCs. Each is recognised by what the server
answered, not by name alone, so a real failure of the same check still fails this test.
No check is filtered out, and SKIPPED counts as a failure (the tool skips only features that
ServiceProviderConfig declares unsupported; this version of the tool checks none of those).

Counts with scim2-tester 0.5.2 (`pytest -s tests/conformance/test_conformance.py` prints them and the
table of every check):

    discovery  SUCCESS 25
    misc       SUCCESS 1    (an unknown URL answers 404)
    User       SUCCESS 92, ERROR 3 (the 3 known tool false positives below)
    Group      SUCCESS 16, ERROR 2 (the 2 known tool false positives below)

Until provisioning/users.py stops re-adding `active` after a PATCH removed it, User is
SUCCESS 91, ERROR 4 and this test fails on a real bug: check_remove_attribute 'active' (RFC
7644 §3.5.2.2: a removed single-valued attribute "SHALL be considered unassigned").

The known false positives (RFC analysis):

- User, check_add/remove/replace_attribute on the whole
  `urn:ietf:params:scim:schemas:extension:secretsplatform:2.0:User` extension. Every attribute
  of that extension is readOnly (the platform sets them); the tool nonetheless treats an
  extension as a read-write attribute (scim2-models gives an extension field no mutability of
  its own), PATCHes it with an empty value or removes it, and expects the server to echo the
  empty value or drop server-owned data. RFC 7644 §3.5.2: "a client MUST NOT modify an
  attribute that has mutability readOnly"; "An operation that is not compatible with an
  attribute's mutability ... SHALL return the appropriate HTTP response status code"; §3.12
  names that `mutability`. The server answers 400 mutability, as it should. Declaring the
  extension `required: true` in /ResourceTypes would make the tool skip add/remove, but it is
  wrong: RFC 7643 §6 then obliges every resource sent *by a client* to carry the extension,
  which no client can do with readOnly-only attributes (scim2-client refuses to send a create
  without it), and the replace check would still run.
- Group, check_add/replace_attribute on `members`: the server answers each member with
  `display` (the user's displayName, else userName), a readOnly sub-attribute the tool did not
  send, and the tool compares the whole complex value. RFC 7643 §2.4 lists `display` among the
  default sub-attributes of multi-valued attributes, §8.4 shows it in Group members, and readOnly
  values are the service provider's to set (§2.2). Tolerated only when `display` is the sole
  difference.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.scim import schema as s
from tests.conftest import Tenant
from tests.support import free_port

httpx2 = pytest.importorskip("httpx2")
pytest.importorskip("scim2_tester")

from scim2_client.engines.httpx2 import SyncSCIMClient  # noqa: E402
from scim2_models import BaseModel, SCIMException  # noqa: E402
from scim2_tester import CheckResult, Status, check_server  # noqa: E402

# Well under the ~60 s budget: the whole run takes a few seconds.
CHECKER_TIMEOUT = 60


@dataclass(frozen=True)
class KnownFalsePositive:
    resource_type: str
    title: str
    urn: str
    why: str


def _urn(result: CheckResult) -> Any:
    return result.data.get("urn") if isinstance(result.data, dict) else None


def _is_mutability_refusal(result: CheckResult) -> bool:
    """The server refused the operation with 400 mutability (RFC 7644 §3.5.2, §3.12)."""
    error = result.data.get("error") if isinstance(result.data, dict) else None
    return (
        isinstance(error, SCIMException)
        and getattr(error, "status", None) == 400
        and getattr(error, "scim_type", None) == "mutability"
    )


def _sent_no_attribute(value: Any) -> bool:
    """The tool's value names no attribute of the extension (all are readOnly)."""
    dumped = value.model_dump() if isinstance(value, BaseModel) else value
    return isinstance(dumped, dict) and not (set(dumped) - {"schemas"})


def _without_display(members: Any) -> Any:
    if not isinstance(members, list):
        return members
    out = []
    for m in members:
        dumped = m.model_dump() if isinstance(m, BaseModel) else dict(m)
        dumped.pop("display", None)
        out.append(dumped)
    return out


def _only_display_differs(result: CheckResult) -> bool:
    data = result.data if isinstance(result.data, dict) else {}
    expected, actual = data.get("expected"), data.get("modify_actual", data.get("actual"))
    return (
        isinstance(actual, list)
        and bool(actual)
        and all(getattr(m, "display", None) for m in actual)
        and _without_display(expected) == _without_display(actual)
    )


def _platform_extension_refused(result: CheckResult) -> bool:
    if not _is_mutability_refusal(result):
        return False
    if result.title == "check_remove_attribute":
        return True  # removing server-owned, readOnly data
    return _sent_no_attribute(result.data.get("patch_value"))


PLATFORM_WHY = "all attributes readOnly: 400 mutability is right (RFC 7644 §3.5.2)"
DISPLAY_WHY = "server-set readOnly members.display (RFC 7643 §2.2, §2.4)"

KNOWN_TOOL_FALSE_POSITIVES: dict[KnownFalsePositive, Any] = {
    KnownFalsePositive("User", title, s.PLATFORM_USER_SCHEMA, PLATFORM_WHY): (
        _platform_extension_refused
    )
    for title in ("check_add_attribute", "check_remove_attribute", "check_replace_attribute")
} | {
    KnownFalsePositive("Group", title, "members", DISPLAY_WHY): _only_display_differs
    for title in ("check_add_attribute", "check_replace_attribute")
}


def _known(result: CheckResult) -> KnownFalsePositive | None:
    if result.status is not Status.ERROR:
        return None
    for known, recognise in KNOWN_TOOL_FALSE_POSITIVES.items():
        if (known.resource_type, known.title, known.urn) == (
            result.resource_type,
            result.title,
            _urn(result),
        ) and recognise(result):
            return known
    return None


def _run_checker(base_url: str, token: str) -> list[CheckResult]:
    """Blocking: every scim2-tester check against the live server."""
    http = httpx2.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    try:
        return check_server(SyncSCIMClient(http))
    finally:
        http.close()


def _scope(result: CheckResult) -> str:
    if result.resource_type:
        return result.resource_type
    if result.tags & {"discovery", "service-provider-config", "resource-types", "schemas"}:
        return "discovery"
    return "misc"


def _table(results: list[CheckResult]) -> str:
    rows = [
        (
            _scope(r),
            r.title or "?",
            r.status.name + (" (known tool false positive)" if _known(r) else ""),
            (r.reason or "").replace("\n", " "),
        )
        for r in results
    ]
    width = [max([len(row[i]) for row in rows] + [5]) for i in range(3)]
    return "\n".join(
        f"  {a:<{width[0]}}  {b:<{width[1]}}  {c:<{width[2]}}  {d}" for a, b, c, d in rows
    )


def _counts(results: list[CheckResult]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(_scope(r), Counter())[r.status.name] += 1
    return {scope: dict(sorted(c.items())) for scope, c in sorted(counts.items())}


async def test_scim2_tester_finds_no_fault(
    settings: Settings, tenant: Tenant, aiohttp_server: Any
) -> None:
    """scim2-tester's checks of discovery, Users and Groups all succeed on the real server."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # meta.location and Location must point at this server: the tool follows them.
    app = create_app(msgspec.structs.replace(settings, public_url_override=base))
    await aiohttp_server(app, host="127.0.0.1", port=port)

    results = await asyncio.wait_for(
        asyncio.to_thread(_run_checker, f"{base}/scim/v2", tenant.token),
        timeout=CHECKER_TIMEOUT,
    )

    counts = _counts(results)
    known = [r for r in results if _known(r)]
    print("\nscim2-tester results per scope:")
    for scope, by_status in counts.items():
        print(f"  {scope:<10} {by_status}")
    print(f"  of which known tool false positives: {len(known)}")
    print(_table(results))

    assert {"discovery", "User", "Group"} <= counts.keys(), counts
    failures = [r for r in results if r.status is not Status.SUCCESS and not _known(r)]
    assert not failures, "scim2-tester checks that are not SUCCESS:\n" + _table(failures)


def test_platform_extension_is_optional_and_read_only() -> None:
    """The platform extension stays `required: false` with readOnly attributes (see above):
    a required extension must be carried by every resource a client sends (RFC 7643 §6), and
    no client can send readOnly values (RFC 7644 §3.5.2)."""
    user_type = s.USER_TYPE.to_scim("http://scim.test/scim/v2")
    assert {"schema": s.PLATFORM_USER_SCHEMA, "required": False} in user_type["schemaExtensions"]
    platform = s.SCHEMAS[s.PLATFORM_USER_SCHEMA].to_scim("http://scim.test/scim/v2")
    assert {a["mutability"] for a in platform["attributes"]} == {"readOnly"}
    assert not any(a["required"] for a in platform["attributes"])
