"""SCIM Users over HTTP against the real database: what IdPs and administrators observe."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from scim_service.provisioning import tenants
from tests.conftest import Tenant, make_tenant

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PLATFORM = "urn:ietf:params:scim:schemas:extension:secretsplatform:2.0:User"
SCIM_JSON = {"Content-Type": "application/scim+json"}


def barbara(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE],
        "userName": "bjensen@example.com",
        "externalId": "00u1",
        "name": {
            "givenName": "Barbara",
            "familyName": "Jensen",
            "formatted": "Ms. Barbara J Jensen",
        },
        "displayName": "Babs Jensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "active": True,
        "password": "t1meMa$heen",
        ENTERPRISE: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
        },
    }
    body.update(extra)
    return body


async def create(client: Any, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/scim/v2/Users", json=body, headers=tenant.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json(content_type=None)


async def error(resp: Any, status: int, scim_type: str | None = None) -> str:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"] == "application/scim+json"
    body = await resp.json(content_type=None)
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type, body
    return str(body["detail"])


async def user_count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM users"))


# --- create -----------------------------------------------------------------------------------


async def test_create_returns_full_resource_with_location_and_etag(
    client: Any, tenant: Tenant
) -> None:
    resp = await client.post("/scim/v2/Users", json=barbara(), headers=tenant.headers)
    assert resp.status == 201
    body = await resp.json(content_type=None)
    user_id = body["id"]
    uuid.UUID(user_id)
    assert resp.headers["Location"] == f"http://scim.test/scim/v2/Users/{user_id}"
    assert resp.headers["ETag"] == body["meta"]["version"] == 'W/"1"'
    assert body["schemas"] == [CORE, ENTERPRISE, PLATFORM]
    assert body["userName"] == "bjensen@example.com"
    assert body["name"]["givenName"] == "Barbara"
    assert body["emails"][0] == {"value": "bjensen@example.com", "type": "work", "primary": True}
    assert body[ENTERPRISE]["manager"]["value"] == "26118915-6090-4610-87e4-49d8ca9f808d"
    assert body[PLATFORM] == {"setupState": "pending"}, (
        "a provisioned user must still set up their account"
    )
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == resp.headers["Location"]
    assert body["meta"]["created"] == body["meta"]["lastModified"]
    assert "password" not in body


async def test_password_is_never_stored(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    await create(client, tenant, barbara())
    dump = await db.fetchval("SELECT string_agg(attrs::text, '') FROM users")
    assert "t1meMa$heen" not in dump and "password" not in dump


async def test_user_without_active_is_active(client: Any, tenant: Tenant) -> None:
    body = await create(client, tenant, {"userName": "plain"})
    assert body["active"] is True


async def test_duplicate_username_is_409_case_insensitively(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    await create(client, tenant, barbara())
    resp = await client.post(
        "/scim/v2/Users", json=barbara(userName="BJensen@Example.COM"), headers=tenant.headers
    )
    detail = await error(resp, 409, "uniqueness")
    assert "userName" in detail
    assert await user_count(db) == 1


async def test_same_username_in_another_org_is_fine(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    other = await make_tenant(db, "other")
    a = await create(client, tenant, barbara())
    b = await create(client, other, barbara())
    assert a["id"] != b["id"]
    # And each organization sees only its own user.
    resp = await client.get(f"/scim/v2/Users/{a['id']}", headers=other.headers)
    await error(resp, 404)
    listing = await (await client.get("/scim/v2/Users", headers=other.headers)).json(
        content_type=None
    )
    assert [u["id"] for u in listing["Resources"]] == [b["id"]]


async def test_attribute_names_are_case_insensitive_on_input(client: Any, tenant: Tenant) -> None:
    body = await create(
        client,
        tenant,
        {
            "Schemas": [CORE],
            "UserName": "okta.user",
            "NAME": {"GivenName": "Ok", "FAMILYNAME": "Ta"},
            "Active": "False",
            "Emails": [{"Value": "o@x.io", "Primary": "True", "TYPE": "work"}],
            ENTERPRISE.upper(): {"Department": "Eng"},
        },
    )
    assert body["userName"] == "okta.user"
    assert body["name"] == {"givenName": "Ok", "familyName": "Ta"}
    assert body["active"] is False, "Entra's 'False' string is a boolean"
    assert body["emails"] == [{"value": "o@x.io", "primary": True, "type": "work"}]
    assert body[ENTERPRISE] == {"department": "Eng"}


async def test_unknown_attributes_and_extensions_are_tolerated(client: Any, tenant: Tenant) -> None:
    body = await create(
        client,
        tenant,
        {
            "schemas": [
                CORE,
                "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User",
            ],
            "userName": "entra",
            "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {
                "CustomAttribute": "x"
            },
            "favouriteColour": "teal",
            "id": "client-chosen-id",
            "meta": {"version": "bogus"},
            "groups": [{"value": "g1"}],
        },
    )
    assert "favouriteColour" not in body
    assert body["id"] != "client-chosen-id"
    assert "groups" not in body
    assert body["meta"]["version"] == 'W/"1"'


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"userName": "x", "active": 5}, "active"),
        ({"userName": "x", "emails": {"value": "a@b"}}, "emails"),
        ({"userName": "x", "name": {"givenName": 5}}, "name.givenName"),
        ({"userName": "x", "name": "Barbara"}, "name"),
        ({"userName": 42}, "userName"),
        (
            {
                "userName": "x",
                "emails": [{"value": "a", "primary": True}, {"value": "b", "primary": True}],
            },
            "emails",
        ),
        ({"userName": "x", ENTERPRISE: {"employeeNumber": 7}}, "employeeNumber"),
        ({"userName": "x", "title": "a\u0000b"}, "title"),
        ({"userName": "x" * 2000}, "userName"),
    ],
)
async def test_wrong_types_are_400_with_the_path_and_change_nothing(
    client: Any, tenant: Tenant, db: asyncpg.Connection, body: dict[str, Any], path: str
) -> None:
    resp = await client.post("/scim/v2/Users", json=body, headers=tenant.headers)
    detail = await error(resp, 400, "invalidValue")
    assert path in detail
    assert await user_count(db) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"userName": ""}, {"userName": "   "}, {"userName": None}, {"name": {"givenName": "x"}}],
)
async def test_username_is_required(client: Any, tenant: Tenant, body: dict[str, Any]) -> None:
    detail = await error(
        await client.post("/scim/v2/Users", json=body, headers=tenant.headers), 400, "invalidValue"
    )
    assert "userName" in detail


async def test_malformed_bodies(client: Any, tenant: Tenant, db: asyncpg.Connection) -> None:
    headers = {**tenant.headers, **SCIM_JSON}
    await error(
        await client.post("/scim/v2/Users", data=b'{"userName": ', headers=headers),
        400,
        "invalidSyntax",
    )
    await error(
        await client.post("/scim/v2/Users", data=b"", headers=headers), 400, "invalidSyntax"
    )
    await error(
        await client.post("/scim/v2/Users", data=b"[1, 2]", headers=headers), 400, "invalidValue"
    )
    detail = await error(
        await client.post(
            "/scim/v2/Users",
            data=b"userName=x",
            headers={**tenant.headers, "Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
    )
    assert "application/scim+json" in detail
    assert await user_count(db) == 0


async def test_plain_json_content_type_is_accepted(client: Any, tenant: Tenant) -> None:
    resp = await client.post(
        "/scim/v2/Users",
        data=b'{"userName": "jc"}',
        headers={**tenant.headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status == 201


# --- read ---------------------------------------------------------------------------------------


async def test_get_by_id_and_unknown_ids(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    resp = await client.get(f"/scim/v2/Users/{created['id']}", headers=tenant.headers)
    assert resp.status == 200
    assert await resp.json(content_type=None) == created
    await error(await client.get(f"/scim/v2/Users/{uuid.uuid4()}", headers=tenant.headers), 404)
    await error(await client.get("/scim/v2/Users/not-a-uuid", headers=tenant.headers), 404)


async def test_attribute_projection_on_reads_and_writes(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    url = f"/scim/v2/Users/{created['id']}"
    body = await (
        await client.get(
            f"{url}?attributes=userName,name.familyName,emails.value", headers=tenant.headers
        )
    ).json(content_type=None)
    assert body == {
        "schemas": [CORE, ENTERPRISE, PLATFORM],
        "id": created["id"],
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}],
    }
    body = await (
        await client.get(
            f"{url}?excludedAttributes=emails,name.givenName,{ENTERPRISE}:department,id",
            headers=tenant.headers,
        )
    ).json(content_type=None)
    assert (
        "emails" not in body
        and "givenName" not in body["name"]
        and body["name"]["familyName"] == "Jensen"
    )
    assert "department" not in body[ENTERPRISE] and body[ENTERPRISE]["employeeNumber"] == "701984"
    assert body["id"] == created["id"], "id is returned always"
    body = await (await client.get(f"{url}?attributes={ENTERPRISE}", headers=tenant.headers)).json(
        content_type=None
    )
    assert set(body) == {"schemas", "id", ENTERPRISE}
    resp = await client.post(
        "/scim/v2/Users?attributes=userName", json={"userName": "proj"}, headers=tenant.headers
    )
    assert set(await resp.json(content_type=None)) == {"schemas", "id", "userName"}


async def test_conditional_get(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    url = f"/scim/v2/Users/{created['id']}"
    resp = await client.get(url, headers={**tenant.headers, "If-None-Match": 'W/"1"'})
    assert resp.status == 304
    assert resp.headers["ETag"] == 'W/"1"'
    resp = await client.get(url, headers={**tenant.headers, "If-None-Match": 'W/"0"'})
    assert resp.status == 200


# --- replace -------------------------------------------------------------------------------------


async def test_put_replaces_and_bumps_version(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    url = f"/scim/v2/Users/{created['id']}"
    resp = await client.put(
        url,
        json={
            "schemas": [CORE],
            "id": created["id"],
            "userName": "bjensen@example.com",
            "title": "Tour Guide",
            "meta": {"version": "x"},
        },
        headers=tenant.headers,
    )
    assert resp.status == 200
    body = await resp.json(content_type=None)
    assert body["title"] == "Tour Guide"
    assert "emails" not in body and "name" not in body and ENTERPRISE not in body, "PUT replaces"
    assert body["meta"]["version"] == resp.headers["ETag"] == 'W/"2"'
    assert body["meta"]["created"] == created["meta"]["created"]
    assert body["meta"]["lastModified"] > created["meta"]["lastModified"]
    assert body[PLATFORM]["setupState"] == "pending"


async def test_put_identical_changes_nothing(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    resp = await client.put(
        f"/scim/v2/Users/{created['id']}", json=barbara(), headers=tenant.headers
    )
    body = await resp.json(content_type=None)
    assert body["meta"]["version"] == 'W/"1"'
    assert body["meta"]["lastModified"] == created["meta"]["lastModified"]


async def test_put_without_active_does_not_reactivate(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara(active=False))
    body = await (
        await client.put(
            f"/scim/v2/Users/{created['id']}",
            json={"userName": "bjensen@example.com", "title": "x"},
            headers=tenant.headers,
        )
    ).json(content_type=None)
    assert body["active"] is False


async def test_put_with_another_id_is_rejected(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    resp = await client.put(
        f"/scim/v2/Users/{created['id']}",
        json=barbara(id=str(uuid.uuid4()), title="changed"),
        headers=tenant.headers,
    )
    await error(resp, 400, "mutability")
    after = await (
        await client.get(f"/scim/v2/Users/{created['id']}", headers=tenant.headers)
    ).json(content_type=None)
    assert "title" not in after


async def test_put_to_taken_username_is_409(client: Any, tenant: Tenant) -> None:
    await create(client, tenant, {"userName": "taken"})
    other = await create(client, tenant, {"userName": "free"})
    resp = await client.put(
        f"/scim/v2/Users/{other['id']}", json={"userName": "TAKEN"}, headers=tenant.headers
    )
    await error(resp, 409, "uniqueness")


async def test_deactivate_and_reactivate_by_put(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    url = f"/scim/v2/Users/{created['id']}"
    off = await (await client.put(url, json=barbara(active=False), headers=tenant.headers)).json(
        content_type=None
    )
    assert off["active"] is False
    got = await (await client.get(url, headers=tenant.headers)).json(content_type=None)
    assert got["active"] is False, "a deactivated user stays readable"
    on = await (await client.put(url, json=barbara(active="True"), headers=tenant.headers)).json(
        content_type=None
    )
    assert on["active"] is True


async def test_if_match(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    url = f"/scim/v2/Users/{created['id']}"
    resp = await client.put(
        url, json=barbara(title="a"), headers={**tenant.headers, "If-Match": 'W/"7"'}
    )
    await error(resp, 412)
    resp = await client.delete(url, headers={**tenant.headers, "If-Match": '"7"'})
    await error(resp, 412)
    got = await (await client.get(url, headers=tenant.headers)).json(content_type=None)
    assert "title" not in got and got["meta"]["version"] == 'W/"1"'
    resp = await client.put(
        url, json=barbara(title="a"), headers={**tenant.headers, "If-Match": 'W/"1"'}
    )
    assert resp.status == 200 and resp.headers["ETag"] == 'W/"2"'
    resp = await client.put(
        url, json=barbara(title="b"), headers={**tenant.headers, "If-Match": "*"}
    )
    assert resp.status == 200


# --- delete ---------------------------------------------------------------------------------------


async def test_delete_then_404_everywhere(client: Any, tenant: Tenant) -> None:
    created = await create(client, tenant, barbara())
    url = f"/scim/v2/Users/{created['id']}"
    resp = await client.delete(url, headers=tenant.headers)
    assert resp.status == 204
    assert await resp.read() == b""
    await error(await client.get(url, headers=tenant.headers), 404)
    await error(await client.put(url, json=barbara(), headers=tenant.headers), 404)
    await error(await client.delete(url, headers=tenant.headers), 404)
    listing = await (await client.get("/scim/v2/Users", headers=tenant.headers)).json(
        content_type=None
    )
    assert listing["totalResults"] == 0
    # The userName is free again.
    await create(client, tenant, barbara())


# --- list, filter, paging, sort ------------------------------------------------------------------


async def seed(client: Any, tenant: Tenant, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(
            await create(
                client,
                tenant,
                {
                    "userName": f"user{i:02d}@example.com",
                    "displayName": f"User {i:02d}",
                    "name": {"familyName": f"Family{(n - i):02d}"},
                    "emails": [
                        {"value": f"u{i}@corp{i % 3}.example", "type": "work" if i % 2 else "home"}
                    ],
                    "active": i % 4 != 0,
                    "title": "Engineer" if i < 3 else None,
                    "externalId": f"EXT-{i}",
                },
            )
        )
    return out


async def listing(client: Any, tenant: Tenant, query: str) -> dict[str, Any]:
    resp = await client.get(f"/scim/v2/Users?{query}", headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


def q(filter_: str) -> str:
    return "filter=" + quote(filter_, safe="")


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('userName eq "USER03@example.com"', [3]),
        ('userName sw "user0"', list(range(10))),
        ('userName co "er1"', [10, 11]),
        ('userName ew "1@example.com"', [1, 11]),
        ('emails.value sw "u1"', [1, 10, 11]),
        ('emails co "corp2"', [2, 5, 8, 11]),
        ('emails[type eq "work" and value co "corp1"]', [1, 7]),
        ('externalId eq "EXT-4"', [4]),
        ('externalId eq "ext-4"', []),
        ("active eq false", [0, 4, 8]),
        ('active eq "False"', [0, 4, 8]),
        ("title pr", [0, 1, 2]),
        ('title ne "Engineer"', list(range(3, 12))),
        ('not (title eq "Engineer")', list(range(3, 12))),
        ('displayName gt "User 09"', [10, 11]),
        ('name.familyName le "Family02"', [10, 11]),
        ('userName eq "user01@example.com" or userName eq "user02@example.com"', [1, 2]),
        ('(active eq true and emails co "corp0") or externalId eq "EXT-0"', [0, 3, 6, 9]),
        ('meta.created gt "2000-01-01T00:00:00Z"', list(range(12))),
        ('meta.lastModified lt "2000-01-01T00:00:00Z"', []),
        (f'{PLATFORM}:setupState eq "pending"', list(range(12))),
        ("userName eq null", []),
    ],
)
async def test_filters(client: Any, tenant: Tenant, filter_: str, expected: list[int]) -> None:
    users = await seed(client, tenant, 12)
    got = await listing(client, tenant, q(filter_) + "&count=100")
    ids = {u["id"] for u in got["Resources"]}
    assert ids == {users[i]["id"] for i in expected}, filter_
    assert got["totalResults"] == len(expected)


@pytest.mark.parametrize(
    ("filter_", "fragment"),
    [
        ('nosuch eq "x"', "Unknown attribute nosuch"),
        ('name.nosuch eq "x"', "nosuch"),
        ('userName eq "x" and', "end of filter"),
        ("userName eq 5", "string"),
        ("active gt true", "boolean"),
        ('meta.created co "2020"', "dateTime"),
        ('userName xx "a"', "Unknown operator"),
        ('emails[type eq "work"', "']'"),
        ('name eq "x"', "complex"),
    ],
)
async def test_bad_filters_are_400_invalid_filter(
    client: Any, tenant: Tenant, filter_: str, fragment: str
) -> None:
    """A filter that cannot be understood never silently matches everyone."""
    await seed(client, tenant, 2)
    resp = await client.get(f"/scim/v2/Users?{q(filter_)}", headers=tenant.headers)
    detail = await error(resp, 400, "invalidFilter")
    assert fragment in detail


async def test_entra_plus_for_spaces(client: Any, tenant: Tenant) -> None:
    users = await seed(client, tenant, 3)
    got = await listing(client, tenant, "filter=userName+eq+%22user01%40example.com%22")
    assert [u["id"] for u in got["Resources"]] == [users[1]["id"]]


async def test_like_wildcards_in_values_are_literal(client: Any, tenant: Tenant) -> None:
    await create(client, tenant, {"userName": "a_b%c"})
    await create(client, tenant, {"userName": "axbyc"})
    got = await listing(client, tenant, q('userName co "_b%"'))
    assert [u["userName"] for u in got["Resources"]] == ["a_b%c"]
    got = await listing(client, tenant, q('userName sw "a_"'))
    assert [u["userName"] for u in got["Resources"]] == ["a_b%c"]


async def test_email_prefix_filter_follows_every_write(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """`emails.value sw` answers from a per-value index kept beside the user row: it must see
    creates, PUT, PATCH (adding, replacing and removing emails) and DELETE at once, and never
    another organization's users."""

    async def found(prefix: str, t: Tenant = tenant) -> list[str]:
        got = await listing(client, t, q(f'emails.value sw "{prefix}"'))
        assert got["totalResults"] == len(got.get("Resources", []))
        return [u["userName"] for u in got.get("Resources", [])]

    other = await make_tenant(db, "other")
    await create(client, other, barbara())
    user = await create(client, tenant, barbara())
    path = f"/scim/v2/Users/{user['id']}"
    assert await found("BJensen@") == ["bjensen@example.com"]
    assert await found("babs@") == ["bjensen@example.com"]
    assert await found("nobody") == []

    resp = await client.put(
        path,
        json=barbara(emails=[{"value": "barbara@new.example", "type": "work"}]),
        headers=tenant.headers,
    )
    assert resp.status == 200
    assert await found("bjensen@") == [] and await found("babs@") == []
    assert await found("barbara@") == ["bjensen@example.com"]

    ops = [{"op": "add", "path": "emails", "value": [{"value": "b2@else.example"}]}]
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}
    assert (await client.patch(path, json=patch, headers=tenant.headers)).status == 200
    assert await found("b2@") == ["bjensen@example.com"]
    assert await found("barbara@") == ["bjensen@example.com"]

    patch["Operations"] = [{"op": "remove", "path": "emails"}]
    assert (await client.patch(path, json=patch, headers=tenant.headers)).status == 200
    assert await found("b2@") == [] and await found("barbara@") == []

    patch["Operations"] = [{"op": "add", "path": "emails", "value": [{"value": "Z@z.example"}]}]
    assert (await client.patch(path, json=patch, headers=tenant.headers)).status == 200
    assert await found("z@") == ["bjensen@example.com"]
    assert (await client.delete(path, headers=tenant.headers)).status == 204
    assert await found("z@") == []
    assert await found("bjensen@", other) == ["bjensen@example.com"]


async def test_paging_is_stable_and_total_is_true(client: Any, tenant: Tenant) -> None:
    users = await seed(client, tenant, 12)
    seen: list[str] = []
    start = 1
    while True:
        page = await listing(client, tenant, f"startIndex={start}&count=5")
        assert page["totalResults"] == 12
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"])
        if not page["Resources"]:
            break
        seen.extend(u["id"] for u in page["Resources"])
        start += 5
    assert seen == [u["id"] for u in users], "every user exactly once, in creation order"
    assert (await listing(client, tenant, "count=0"))["Resources"] == []
    assert (await listing(client, tenant, "count=0"))["totalResults"] == 12
    assert (await listing(client, tenant, "startIndex=-5&count=1"))["startIndex"] == 1
    assert len((await listing(client, tenant, "count=100000"))["Resources"]) == 12
    assert (await listing(client, tenant, "startIndex=50"))["Resources"] == []


async def test_bad_paging_values(client: Any, tenant: Tenant) -> None:
    await error(
        await client.get("/scim/v2/Users?count=ten", headers=tenant.headers), 400, "invalidValue"
    )
    await error(
        await client.get("/scim/v2/Users?startIndex=1.5", headers=tenant.headers),
        400,
        "invalidValue",
    )
    await error(
        await client.get(
            "/scim/v2/Users?sortBy=userName&sortOrder=upwards", headers=tenant.headers
        ),
        400,
        "invalidValue",
    )
    await error(
        await client.get("/scim/v2/Users?sortBy=nosuch", headers=tenant.headers),
        400,
        "invalidValue",
    )


async def test_sorting(client: Any, tenant: Tenant) -> None:
    users = await seed(client, tenant, 6)
    by_family = await listing(client, tenant, "sortBy=name.familyName")
    assert [u["id"] for u in by_family["Resources"]] == [u["id"] for u in reversed(users)]
    desc = await listing(client, tenant, "sortBy=userName&sortOrder=descending")
    assert [u["userName"] for u in desc["Resources"]] == sorted(
        (u["userName"] for u in users), reverse=True
    )
    by_email = await listing(client, tenant, "sortBy=emails.value&count=3")
    assert [u["emails"][0]["value"] for u in by_email["Resources"]] == [
        "u0@corp0.example",
        "u1@corp1.example",
        "u2@corp2.example",
    ]
    by_created = await listing(client, tenant, "sortBy=meta.created&sortOrder=descending")
    assert [u["id"] for u in by_created["Resources"]] == [u["id"] for u in reversed(users)]


async def test_search_endpoints(client: Any, tenant: Tenant) -> None:
    users = await seed(client, tenant, 4)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "user0"',
        "attributes": ["userName"],
        "sortBy": "userName",
        "sortOrder": "descending",
        "startIndex": 1,
        "count": 2,
    }
    resp = await client.post("/scim/v2/Users/.search", json=body, headers=tenant.headers)
    assert resp.status == 200
    got = await resp.json(content_type=None)
    assert got["totalResults"] == 4
    assert [u["userName"] for u in got["Resources"]] == [users[3]["userName"], users[2]["userName"]]
    assert set(got["Resources"][0]) == {"schemas", "id", "userName"}
    resp = await client.post("/scim/v2/.search", json=body, headers=tenant.headers)
    assert resp.status == 200
    assert (await resp.json(content_type=None))["totalResults"] == 4
    bad = {**body, "schemas": ["urn:wrong"]}
    await error(
        await client.post("/scim/v2/Users/.search", json=bad, headers=tenant.headers),
        400,
        "invalidValue",
    )
    await error(
        await client.post(
            "/scim/v2/Users/.search", json={"filter": "x eq"}, headers=tenant.headers
        ),
        400,
        "invalidFilter",
    )


# --- discovery -------------------------------------------------------------------------------------


async def test_discovery_documents(client: Any, tenant: Tenant) -> None:
    spc = await (await client.get("/scim/v2/ServiceProviderConfig", headers=tenant.headers)).json(
        content_type=None
    )
    assert (
        spc["patch"]["supported"]
        and spc["filter"]["supported"]
        and spc["sort"]["supported"]
        and spc["etag"]["supported"]
    )
    assert spc["bulk"]["supported"] is False and spc["changePassword"]["supported"] is False
    assert spc["filter"]["maxResults"] == 1000
    assert (
        spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
        and spc["authenticationSchemes"][0]["primary"]
    )

    types = await (await client.get("/scim/v2/ResourceTypes", headers=tenant.headers)).json(
        content_type=None
    )
    user_type = next(t for t in types["Resources"] if t["id"] == "User")
    assert user_type["endpoint"] == "/Users" and user_type["schema"] == CORE
    assert {e["schema"] for e in user_type["schemaExtensions"]} == {ENTERPRISE, PLATFORM}
    one = await (await client.get("/scim/v2/ResourceTypes/User", headers=tenant.headers)).json(
        content_type=None
    )
    assert one == user_type

    schemas = await (await client.get("/scim/v2/Schemas", headers=tenant.headers)).json(
        content_type=None
    )
    ids = {x["id"] for x in schemas["Resources"]}
    assert {CORE, ENTERPRISE, PLATFORM} <= ids
    core = await (await client.get(f"/scim/v2/Schemas/{CORE}", headers=tenant.headers)).json(
        content_type=None
    )
    attrs = {a["name"]: a for a in core["attributes"]}
    assert attrs["userName"]["uniqueness"] == "server" and attrs["userName"]["required"] is True
    assert attrs["password"]["returned"] == "never" and attrs["groups"]["mutability"] == "readOnly"
    platform = await (
        await client.get(f"/scim/v2/Schemas/{PLATFORM}", headers=tenant.headers)
    ).json(content_type=None)
    setup = next(a for a in platform["attributes"] if a["name"] == "setupState")
    assert setup["mutability"] == "readOnly" and setup["canonicalValues"] == ["pending", "complete"]

    await error(await client.get("/scim/v2/Schemas/urn:nope", headers=tenant.headers), 404)
    await error(await client.get("/scim/v2/ResourceTypes/Nope", headers=tenant.headers), 404)
    for method in ("post", "put", "patch", "delete"):
        resp = await getattr(client, method)(
            "/scim/v2/ServiceProviderConfig", json={}, headers=tenant.headers
        )
        await error(resp, 405)
        resp = await getattr(client, method)("/scim/v2/Schemas", json={}, headers=tenant.headers)
        await error(resp, 405)


# --- platform: account setup ------------------------------------------------------------------------


async def test_setup_complete_via_admin_api(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    created = await create(client, tenant, barbara())
    url = f"/admin/v1/orgs/{tenant.org_id}/users/{created['id']}/setup-complete"
    resp = await client.post(url, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json(content_type=None)
    assert body[PLATFORM]["setupState"] == "complete"
    assert "setupCompletedAt" in body[PLATFORM]
    again = await (await client.post(url, headers=admin_headers)).json(content_type=None)
    assert again["meta"]["version"] == body["meta"]["version"], "idempotent"
    got = await (await client.get(f"/scim/v2/Users/{created['id']}", headers=tenant.headers)).json(
        content_type=None
    )
    assert got[PLATFORM]["setupState"] == "complete"
    filtered = await listing(client, tenant, q(f'{PLATFORM}:setupState eq "complete"'))
    assert filtered["totalResults"] == 1
    # An IdP cannot set it.
    resp = await client.put(
        f"/scim/v2/Users/{created['id']}",
        json=barbara(**{PLATFORM: {"setupState": "pending"}}),
        headers=tenant.headers,
    )
    assert (await resp.json(content_type=None))[PLATFORM]["setupState"] == "complete"
    # Another organization's user is not reachable through this organization.
    other = await client.post(
        f"/admin/v1/orgs/{uuid.uuid4()}/users/{created['id']}/setup-complete", headers=admin_headers
    )
    assert other.status == 404


async def test_disabled_org_cannot_read_users(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    await create(client, tenant, barbara())
    await tenants.set_scim_enabled(db, tenant.org_id, False)
    await error(await client.get("/scim/v2/Users", headers=tenant.headers), 403)
