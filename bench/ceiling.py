"""pgbench scripts for "the PostgreSQL ceiling" of each scenario: the statements the handler
runs, in the same order and with the same round trips, and nothing else.

The SQL text is the service's own: the named queries loaded by scim_service.store.db (so the
scripts follow sql/queries/*.sql as it changes) and, for searches, the WHERE clause compiled by
scim_service.store.filters.where_sql for the same filter, assembled as search_page assembles it.
Only the parameters change: each `$n` becomes a pgbench variable or an SQL expression computing
the value the benchmark's client would send (see dataset.py for the naming scheme), and the
event payload is a real encoded CloudEvent of the same type. Per request, the handler runs:

  every SCIM request   authenticate_token (auth middleware; touch_token at most once a minute,
                       so not in the scripts)
  GET /Users/{id}      get_user_with_groups
  GET /Users?filter=   count(*), the page (LIMIT/OFFSET), groups_of_users for the page
  POST /Users          what provisioning.users.create_user sends, recorded by running it on a
                       stand-in connection (today: insert_user_with_events, one statement)
  PATCH add member     BEGIN, lock_group, add_members, update_group (with its event), COMMIT
  GET /Groups/{id}     get_group (members excluded)
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dataset

from scim_service.events import envelope as ev
from scim_service.events.emitter import Emitter
from scim_service.scim.filter import parse_filter
from scim_service.store.db import QUERIES as Q
from scim_service.store.filters import where_sql
from scim_service.store.users import USER_SPEC

_PARAM = re.compile(r"\$(\d+)")


def _name_of(sql: str) -> str:
    """The name of a recorded statement in sql/queries, or its text's start."""
    for name, text in Q.items():
        if text == sql:
            return name
    return sql.strip().split("\n")[0][:40]


def bind(sql: str, params: Mapping[int, str]) -> str:
    """Replace each `$n` by the SQL expression given for n (every n must be given)."""

    def repl(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in params:
            raise KeyError(f"no value for ${n} in: {sql[:80]}...")
        return params[n]

    return _PARAM.sub(repl, sql)


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def bytea(data: bytes) -> str:
    return "'\\x" + data.hex() + "'::bytea"


def _array(names: list[str]) -> str:
    return "(ARRAY[" + ",".join(literal(n.lower()) for n in names) + "])"


def given_sql(k: str) -> str:
    return f"{_array(dataset.GIVEN)}[({k}) % 64 + 1]"


def family_sql(k: str) -> str:
    return f"{_array(dataset.FAMILY)}[(({k}) / 64) % 64 + 1]"


def eq_value_sql() -> str:
    k = ":i::int / 10"
    return (
        f"{given_sql(k)} || '.' || {family_sql(k)} || '.' || lpad(:i::text, 6, '0')"
        " || '@example.com'"
    )


def co_value_sql() -> str:
    return "'.' || lpad(:k::text, 5, '0')"


def sw_value_sql() -> str:
    k = ":k::int"
    return f"{given_sql(k)} || '.' || {family_sql(k)} || '.' || lpad(:k::text, 5, '0')"


def statement(sql: str, gset: str | None = None) -> str:
    sql = strip_comments(sql).strip().rstrip(";")
    return f"{sql} \\gset {gset}\n" if gset else f"{sql};\n"


_COMMENT = re.compile(r"--[^\n]*")
_SENTINEL_TOP = 0xB3  # the top byte of the UUIDs uuid4() returns while recording
SENTINEL_NAME = "SENTINELNAME@example.com"
UNIQUE_NAME = "'pgb.' || :client_id::text || '.' || :n::text || '@example.com'"


class _Transaction:
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    async def __aenter__(self) -> None:
        self.recorder.calls.append(("BEGIN", ()))

    async def __aexit__(self, *exc: object) -> None:
        self.recorder.calls.append(("COMMIT" if exc[0] is None else "ROLLBACK", ()))


class _Recorder:
    """Stands in for an asyncpg connection and records each statement with its arguments.
    Rows it returns are made up (a new user), enough for the write paths recorded here."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    async def execute(self, sql: str, *args: Any) -> str:
        self.calls.append((sql, args))
        return "OK"

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.calls.append((sql, args))
        return datetime.now(UTC) if "now()" in sql else None

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.calls.append((sql, args))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any]:
        self.calls.append((sql, args))
        ids = [a for a in args if isinstance(a, uuid.UUID) and a.int >> 120 == _SENTINEL_TOP]
        attrs = next((a for a in args if isinstance(a, dict)), {})
        now = datetime.now(UTC)
        return {
            "id": ids[0] if ids else uuid.uuid4(),
            "attrs": attrs,
            "setup_state": "pending",
            "setup_completed_at": None,
            "version": 1,
            "event_seq": 1,
            "created_at": now,
            "updated_at": now,
        }


def record_create_user(
    org_id: uuid.UUID, sinks: tuple[str, ...]
) -> list[tuple[str, tuple[Any, ...]]]:
    """What provisioning.users.create_user sends to PostgreSQL for one POST /Users body,
    found by running it on a recording connection. uuid4() returns recognisable values meanwhile,
    so each generated id can be given its own per-transaction value in the script."""
    from unittest import mock

    from scim_service.provisioning import users as provisioning
    from scim_service.provisioning.scope import Scope

    counter = iter(range(1, 1_000_000))
    recorder = _Recorder()
    scope = Scope(org_id, Emitter("http://127.0.0.1:8080/scim/v2", sinks))
    with mock.patch("uuid.uuid4", lambda: uuid.UUID(int=(_SENTINEL_TOP << 120) | next(counter))):
        asyncio.run(provisioning.create_user(recorder, scope, dataset.post_body(SENTINEL_NAME)))  # type: ignore[arg-type]
    return recorder.calls


def sql_value(value: Any, org_id: uuid.UUID) -> str:
    """An SQL expression for a recorded argument. Generated ids become a value fixed for the
    transaction (md5 of the client, the transaction's random number and the id's rank), the new
    userName a unique one; everything else a literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        if value == org_id:
            return ":org::uuid"
        if value.int >> 120 == _SENTINEL_TOP:
            rank = value.int & 0xFFFFFF
            return f"md5('pgb.' || :client_id::text || '.' || :n::text || '.{rank}')::uuid"
        return f"'{value}'::uuid"
    if isinstance(value, datetime):
        return "now()"
    if isinstance(value, bytes):
        return bytea(value)
    if isinstance(value, str):
        if value == SENTINEL_NAME:
            return f"({UNIQUE_NAME})"
        return literal(value)
    if isinstance(value, dict):
        # json.dumps puts a space after each colon: pgbench would take `":true` as a
        # variable named `true` (it substitutes :name even inside string literals).
        text = json.dumps(value)
        if SENTINEL_NAME in text:
            return f"replace({literal(text)}, {literal(SENTINEL_NAME)}, {UNIQUE_NAME})::jsonb"
        return f"{literal(text)}::jsonb"
    if isinstance(value, list | tuple):
        if not value:
            return "'{}'"
        return "ARRAY[" + ",".join(sql_value(v, org_id) for v in value) + "]"
    raise TypeError(f"no SQL form for a recorded {type(value).__name__}")


def strip_comments(sql: str) -> str:
    """Drop `--` comments: pgbench would substitute `:name` found in them."""
    return "\n".join(line for line in _COMMENT.sub("", sql).splitlines() if line.strip())


class Ceiling:
    """Writes the pgbench scripts for one database, organisation and token."""

    def __init__(
        self, workdir: Path, org_id: uuid.UUID, digest: bytes, sinks: tuple[str, ...]
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.org_id = org_id
        self.auth = statement(bind(Q["authenticate_token"], {1: bytea(digest)}))
        self.sinks = "ARRAY[" + ",".join(literal(s) for s in sinks) + "]"
        self.sinks_tuple = sinks
        self.notes: list[str] = []

    def _write(self, name: str, body: str) -> Path:
        path = self.dir / f"{name}.sql"
        path.write_text(body)
        return path

    def get_user(self, users: int) -> Path:
        body = f"\\set i random(0, {users - 1})\n" + self.auth
        body += statement(bind(Q["get_user_with_groups"], {1: ":org", 2: "md5(:i::text)::uuid"}))
        return self._write("get_user", body)

    def search(self, name: str, kind: str, users: int) -> Path:
        """count + page + groups_of_users for a filter (kind: eq, co or sw)."""
        if kind == "eq":
            sample_value, expr = dataset.user_name(0), eq_value_sql()
            pick = f"\\set i random(0, {users - 1})\n"
            ids = "ARRAY[md5(:i::text)::uuid]"
            sample = dataset.eq_filter(0)
        else:
            sample = dataset.co_filter(0) if kind == "co" else dataset.sw_filter(0)
            sample_value = sample.split('"')[1]
            expr = co_value_sql() if kind == "co" else sw_value_sql()
            pick = f"\\set k random(0, {users // 10 - 1})\n"
            ids = "ARRAY(SELECT md5((:k::int * 10 + g)::text)::uuid FROM generate_series(0, 9) g)"
        where, params = where_sql(USER_SPEC, self.org_id, parse_filter(sample))
        mapping: dict[int, str] = {1: ":org"}
        for n, value in enumerate(params.values[1:], start=2):
            if value != sample_value:
                raise ValueError(f"unexpected parameter ${n}={value!r} in {where}")
            mapping[n] = f"({expr})"
        a = USER_SPEC.alias
        frm = f"FROM {USER_SPEC.table} {a} WHERE {where}"
        count_sql = bind(f"SELECT count(*) {frm}", mapping)
        # These filters match at most 10 users, fewer than a page: search_page then sends the
        # page query without LIMIT (every remaining match comes back), so the ceiling does too.
        off = len(params.values) + 1
        page_sql = bind(
            f"SELECT {USER_SPEC.select} {frm} ORDER BY {a}.created_at, {a}.id OFFSET ${off}",
            {**mapping, off: ":off"},
        )
        body = pick + self.auth + statement(count_sql) + statement(page_sql)
        body += statement(bind(Q["groups_of_users"], {1: ":org", 2: ids}))
        return self._write(name, body)

    def post_user(self) -> Path:
        """The statements create_user sends, as recorded (see record_create_user)."""
        try:
            calls = record_create_user(self.org_id, self.sinks_tuple)
        except Exception as exc:
            raise RuntimeError(f"recording create_user failed: {exc!r}") from exc
        body = "\\set n random(1, 1000000000000)\n" + self.auth
        for sql, args in calls:
            if sql in ("BEGIN", "COMMIT", "ROLLBACK"):
                body += sql + ";\n"
                continue
            params = {n: sql_value(a, self.org_id) for n, a in enumerate(args, start=1)}
            body += statement(bind(strip_comments(sql), params))
        self.post_statements = [_name_of(sql) for sql, _ in calls]
        return self._write("post_user", body)

    def _event_rows(
        self, first: int, subject: str, rtype: str, version: str, etype: str, payload: bytes
    ) -> dict[int, str]:
        """outbox.sql `event_rows`' nine parameters, numbered from `first`, for one event."""
        values = [
            "ARRAY[gen_random_uuid()]",
            "ARRAY[:org::uuid]",
            f"ARRAY[{subject}]",
            f"ARRAY[{literal(rtype)}]",
            f"ARRAY[{version}]",
            f"ARRAY[{literal(etype)}]",
            "ARRAY[now()]",
            f"ARRAY[{bytea(payload)}]",
            self.sinks,
        ]
        return {first + i: v for i, v in enumerate(values)}

    def patch_member(self) -> Path:
        """One new member per transaction: user 1000 + client_id * 9000 + c (c counts this
        client's transactions), into the group :gid (a fresh copy of the team group per run)."""
        gid = uuid.uuid4()
        added = [dataset.user_id(1000)]
        payload = ev.encode(
            ev.group_changed(
                self.org_id,
                gid,
                {"displayName": dataset.TEAM_GROUP_NAME},
                kinds=["members_added"],
                added=added,
                removed=[],
                member_count=dataset.TEAM_SIZE + 1,
            )[0],
            event_id=uuid.uuid4(),
            source="http://127.0.0.1:8080/scim/v2",
            time=datetime.now(UTC),
            org_id=self.org_id,
            version=2,
        )
        body = "\\set c :c + 1\n\\set m 1000 + :client_id * 9000 + :c\n" + self.auth
        body += "BEGIN;\n"
        body += statement(bind(Q["lock_group"], {1: ":org", 2: ":gid"}), gset="p_")
        body += statement(
            bind(Q["add_members"], {1: ":org", 2: ":gid", 3: "ARRAY[md5(:m::text)::uuid]"})
        )
        # The group's new version and its event in one statement (update_group ends with
        # event_rows); the event's version is the group's counter + 1, as lock_group read it.
        events = self._event_rows(
            6, ":gid::uuid", "Group", ":p_event_seq::bigint + 1", ev.GROUP_CHANGED, payload
        )
        body += statement(
            bind(Q["update_group"], {1: ":org", 2: ":gid", 3: "NULL", 4: "1", 5: "1", **events})
        )
        body += "COMMIT;\n"
        return self._write("patch_member", body)

    def get_group(self) -> Path:
        body = self.auth + statement(bind(Q["get_group"], {1: ":org", 2: ":gid"}))
        return self._write("get_group", body)
