"""POST /scim/v2/.search (RFC 7644 §3.4.3): one query across Users and Groups.

Results are Users then Groups (each in its own sort order), paged over the concatenation. A
filter naming an attribute one resource type lacks simply matches nothing of that type; a
filter no resource type understands is 400 invalidFilter. A sortBy that one type lacks leaves
that type in its default order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import msgspec

from scim_service.errors import InvalidFilter, InvalidValue, ScimError
from scim_service.provisioning import groups, users
from scim_service.provisioning.scope import Scope
from scim_service.scim.query import ListQuery
from scim_service.store.filters import TableSpec, sort_expression
from scim_service.store.groups import GROUP_SPEC, StoredGroup
from scim_service.store.users import USER_SPEC, StoredUser

Fetch = Callable[[ListQuery], Awaitable[tuple[int, Sequence[Any]]]]


class Found(msgspec.Struct, kw_only=True):
    """One page across the resource types: `total` counts every match of every type."""

    total: int
    users: list[StoredUser]
    groups: list[StoredGroup]


def _sortable(query: ListQuery, spec: TableSpec) -> ListQuery:
    """The query for one resource type: its default order when it lacks the sortBy."""
    if query.sort_by:
        try:
            sort_expression(spec, query.sort_by)
        except InvalidValue:
            return msgspec.structs.replace(query, sort_by=None, descending=False)
    return query


async def search_all(
    conn: asyncpg.Connection,
    scope: Scope,
    query: ListQuery,
    *,
    with_groups: bool,
    with_members: bool,
) -> Found:
    """Count each type, then read the part of the page that falls into it."""

    def fetch_users(q: ListQuery) -> Awaitable[tuple[int, Sequence[Any]]]:
        return users.search_users(conn, scope, q, with_groups=with_groups)

    def fetch_groups(q: ListQuery) -> Awaitable[tuple[int, Sequence[Any]]]:
        return groups.search_groups(conn, scope, q, with_members=with_members)

    kinds: list[tuple[Fetch, TableSpec]] = [(fetch_users, USER_SPEC), (fetch_groups, GROUP_SPEC)]
    pages: list[list[Any]] = []
    grand_total = 0
    offset, wanted = query.offset, query.count
    failed: list[ScimError] = []
    for fetch, spec in kinds:
        q = _sortable(query, spec)
        page: list[Any] = []
        pages.append(page)
        try:
            total, _ = await fetch(msgspec.structs.replace(q, count=0))
        except InvalidFilter as exc:
            failed.append(exc)
            continue
        grand_total += total
        if wanted > 0 and offset < total:
            _, found = await fetch(msgspec.structs.replace(q, start_index=offset + 1, count=wanted))
            page.extend(found)
            wanted -= len(found)
        offset = max(0, offset - total)
    if len(failed) == len(kinds):
        raise failed[0]
    return Found(total=grand_total, users=pages[0], groups=pages[1])
