"""Connections, named queries and the translation of driver errors.

SQL lives in `sql/`: versioned migrations and named query blocks (`-- name: x`) loaded once
into `QUERIES`. Values always travel as `$n` parameters. Driver errors are translated here,
once, by SQLSTATE class and constraint name, into the service's error hierarchy.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import msgspec

from scim_service import errors

Connection = asyncpg.Connection
Pool = asyncpg.Pool


def sql_dir() -> Path:
    """`sql/` of the source tree, or the copy a wheel carries as `scim_service/_sql`."""
    packaged = Path(str(resources.files("scim_service"))) / "_sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "sql"


_NAME_RE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_query_file(text: str, source: str = "<sql>") -> dict[str, str]:
    """Split a file of `-- name: x` blocks into {name: sql}."""
    out: dict[str, str] = {}
    matches = list(_NAME_RE.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        if not body:
            raise ValueError(f"{source}: query {m.group(1)!r} is empty")
        if m.group(1) in out:
            raise ValueError(f"{source}: query {m.group(1)!r} is defined twice")
        out[m.group(1)] = body
    return out


_INCLUDE_RE = re.compile(r"^--\s*include:\s*([a-z_][a-z0-9_]*)[^\n]*\n?", re.MULTILINE)
_LEADING_COMMENTS_RE = re.compile(r"\A(?:--[^\n]*\n)+")
_PARAM_RE = re.compile(r"\$(\d+)")


_COMMENT_RE = re.compile(r"--[^\n]*")


def _last_param(sql: str) -> int:
    """The highest `$n` of the SQL itself (a `$n` in a comment numbers nothing)."""
    return max((int(n) for n in _PARAM_RE.findall(_COMMENT_RE.sub("", sql))), default=0)


def _shift(sql: str, offset: int) -> str:
    return _PARAM_RE.sub(lambda p: f"${int(p.group(1)) + offset}", sql)


def resolve_includes(queries: Mapping[str, str]) -> dict[str, str]:
    """Replace each `-- include: fragment` line with that named block, its `$n` parameters
    renumbered to follow the highest one before the line. So SQL written once (outbox.sql's
    `event_rows`, which every write-with-events statement ends with) is never copied by hand."""
    out: dict[str, str] = {}
    for name, body in queries.items():
        text = body
        while (m := _INCLUDE_RE.search(text)) is not None:
            fragment = queries.get(m.group(1))
            if fragment is None or _INCLUDE_RE.search(fragment):
                raise ValueError(f"query {name!r}: cannot include {m.group(1)!r}")
            fragment = _LEADING_COMMENTS_RE.sub("", fragment)  # its explanation stays at home
            shifted = _shift(fragment, _last_param(text[: m.start()]))
            text = text[: m.start()] + shifted + "\n" + text[m.end() :]
        out[name] = text
    return out


def load_queries(directory: Path | None = None) -> Mapping[str, str]:
    directory = directory or sql_dir() / "queries"
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, body in parse_query_file(path.read_text("utf-8"), path.name).items():
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} is already defined in another file")
            queries[name] = body
    return resolve_includes(queries)


QUERIES: Mapping[str, str] = load_queries()


# --- pool ---------------------------------------------------------------------------------------


def _encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: json/jsonb travel as text and are decoded by msgspec."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=_encode_json,
            decoder=msgspec.json.decode,
            schema="pg_catalog",
            format="text",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's reset query (RESET ALL, UNLISTEN *, ...): our pooled
    connections never change session state (LISTEN and SETs live on dedicated connections,
    the migration lock is released in a finally), so that query was a wasted round trip on
    every request. asyncpg still rolls back a transaction left open before calling this."""


class _Timeouts(Protocol):
    @property
    def db_statement_timeout(self) -> float: ...
    @property
    def db_lock_timeout(self) -> float: ...
    @property
    def db_idle_in_transaction_timeout(self) -> float: ...


def session_settings(settings: _Timeouts, lock_timeout: float | None = None) -> dict[str, str]:
    """The bounds every pooled connection of ours runs under (sent at connect time, so they
    cost no round trip): no statement, lock wait or idle transaction lasts longer.
    `lock_timeout`: a shorter lock wait for this pool (the API's: SCIM_DB_REQUEST_LOCK_TIMEOUT)."""

    def ms(seconds: float) -> str:
        return str(round(seconds * 1000))

    locks = settings.db_lock_timeout
    if lock_timeout is not None and lock_timeout > 0:
        locks = lock_timeout if locks <= 0 else min(locks, lock_timeout)
    return {
        "statement_timeout": ms(settings.db_statement_timeout),
        "lock_timeout": ms(locks),
        "idle_in_transaction_session_timeout": ms(settings.db_idle_in_transaction_timeout),
    }


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    timeout: float = 10.0,
    extra: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        init=init_connection,
        reset=_keep_session,
        server_settings={"application_name": "scim-service", **(extra or {})},
    )
    assert pool is not None
    return pool


async def ping(conn: asyncpg.Connection) -> None:
    """One round trip: the connection and the server answer."""
    await conn.fetchval(QUERIES["ping"])


async def connect(dsn: str, *, timeout: float = 10.0) -> asyncpg.Connection:
    conn = await asyncpg.connect(
        dsn, timeout=timeout, server_settings={"application_name": "scim-service"}
    )
    await init_connection(conn)
    return conn


async def fetch_batched(
    conn: asyncpg.Connection, sql: str, args: Sequence[Any], batch: int
) -> list[asyncpg.Record]:
    """All rows of `sql` through a cursor (one snapshot: the cursor's query), `batch` rows per
    round trip, so decoding a big result never holds the event loop for long. In the caller's
    transaction, or a read-only one of its own (a cursor lives in a transaction)."""
    out: list[asyncpg.Record] = []

    async def read() -> None:
        cursor = await conn.cursor(sql, *args)
        while True:
            rows = await cursor.fetch(batch)
            out.extend(rows)
            if len(rows) < batch:
                return

    if conn.is_in_transaction():
        await read()
    else:
        async with conn.transaction(readonly=True):
            await read()
    return out


# --- driver errors → the service's hierarchy -----------------------------------------------------

# Unique constraints (by name) and what the client is told when one is violated.
UNIQUE_CONSTRAINTS: dict[str, str] = {
    "organizations_name_key": "An organization with this name already exists",
    "organizations_pkey": "An organization with this id already exists",
}


# Foreign keys a client's input can violate (a referenced row went away concurrently).
FOREIGN_KEYS: dict[str, str] = {}


def register_unique_constraint(name: str, detail: str) -> None:
    """Store modules declare their own unique constraints next to their queries."""
    UNIQUE_CONSTRAINTS[name] = detail


def register_foreign_key(name: str, detail: str) -> None:
    FOREIGN_KEYS[name] = detail


# SQLSTATE class 22 (data exception) and 54 (program limit exceeded): the value a client sent
# cannot be stored or compared. Details never quote the value or the driver's message.
_BAD_CHARACTER = (
    "A value contains a character that cannot be stored or compared (such as NUL, \\u0000)"
)
_OUT_OF_RANGE = "A value is out of range for its attribute"
_DATA_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (asyncpg.CharacterNotInRepertoireError, _BAD_CHARACTER),
    (asyncpg.UntranslatableCharacterError, _BAD_CHARACTER),
    (asyncpg.DatetimeFieldOverflowError, _OUT_OF_RANGE),
    (asyncpg.NumericValueOutOfRangeError, _OUT_OF_RANGE),
    (asyncpg.InvalidDatetimeFormatError, "A value is not a valid date-time"),
    (asyncpg.InvalidTextRepresentationError, "A value is not valid for its type"),
    (asyncpg.ProgramLimitExceededError, "A value is too large to be stored or indexed"),
)
# asyncpg's client-side DataError (an argument it cannot encode, e.g. an int beyond int4) is
# an InterfaceError + ValueError not exported at the top level.
_ClientDataError: type[Exception] = asyncpg.exceptions._base.DataError
DB_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # TimeoutError and ConnectionError included
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection left in a bad state by a dying server
)
"""What talking to the database may raise when it is away, restarting or refusing: background
loops (publisher, retention, activity log) catch these, wait and try again; anything else is a
bug and ends the loop."""

DATA_ERRORS = (asyncpg.DataError, asyncpg.ProgramLimitExceededError, _ClientDataError)


def data_error(exc: Exception) -> errors.ScimError | None:
    """The 400 for a database data error (SQLSTATE class 22 or 54, or a parameter the driver
    could not encode), on any query path; None for any other exception. The one translation
    of these classes: `translate_errors` uses it, and so does the HTTP middleware for every
    query that runs outside a `translate_errors` block (filters, admin writes)."""
    if not isinstance(exc, DATA_ERRORS):
        return None
    for cls, detail in _DATA_ERRORS:
        if isinstance(exc, cls):
            return errors.InvalidValue(detail)
    return errors.InvalidValue("A value is not valid for its attribute")


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn asyncpg errors into ScimError subclasses, by SQLSTATE and constraint name."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        detail = UNIQUE_CONSTRAINTS.get(exc.constraint_name or "")
        if detail is None:
            raise
        raise errors.Uniqueness(detail) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        detail = FOREIGN_KEYS.get(exc.constraint_name or "")
        if detail is None:
            raise
        raise errors.InvalidValue(detail) from exc
    except DATA_ERRORS as exc:
        # SQLSTATE class 22/54 (a bad value that slipped past validation, e.g. a NUL).
        translated = data_error(exc)
        if translated is None:
            raise
        raise translated from exc
    except Exception as exc:
        unavailable = as_unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from exc


async def fetch_row(
    conn: asyncpg.Connection, query: str, *args: Any, missing: str
) -> asyncpg.Record:
    """The row a locking or writing statement returns (driver errors translated); no row:
    NotFound with the `missing` detail (the resource is not, or no longer, there)."""
    with translate_errors():
        row = await conn.fetchrow(query, *args)
    if row is None:
        raise errors.NotFound(missing)
    return row


def driver_error(exc: BaseException) -> errors.ScimError | None:
    """What a driver or socket error means to a client (400 for a rejected value, 503 for a
    database away or a bound hit), or None for anything else: the HTTP middleware's last
    resort for queries that ran outside `translate_errors`."""
    if isinstance(exc, Exception) and (translated := data_error(exc)) is not None:
        return translated
    return as_unavailable(exc)


def as_unavailable(exc: BaseException) -> errors.Unavailable | None:
    """The 503 a driver or socket error means (the database is away, a bound was hit), or None
    when `exc` is something else. Used at the storage boundary and, for paths that reach the
    pool outside it (authentication), by the HTTP middleware."""
    if isinstance(exc, errors.Unavailable):
        return exc
    if isinstance(exc, asyncpg.QueryCanceledError):  # 57014: statement_timeout
        return errors.Unavailable(
            "The database took too long to answer; retry later", reason="statement_timeout"
        )
    if isinstance(exc, asyncpg.LockNotAvailableError):  # 55P03: lock_timeout
        return errors.Unavailable(
            "The resource is busy; retry later", retry_after=1, reason=errors.LOCK_TIMEOUT
        )
    if isinstance(exc, asyncpg.IdleInTransactionSessionTimeoutError):
        return errors.Unavailable(
            "The database ended the transaction; retry later", reason="idle_timeout"
        )
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str):
        # The database cannot take this work now, whatever the request: a read-only server
        # (25006: a failover or a DBA's default_transaction_read_only), a shutdown or a
        # recovery in progress (57P01-57P05), out of resources (class 53: disk full, too many
        # connections, out of memory). IdPs retry a 503 with Retry-After, never a 500.
        if sqlstate == "25006":
            return errors.Unavailable(
                "The database is read-only right now; retry later",
                retry_after=5,
                reason="read_only",
            )
        if sqlstate[:2] == "53":
            return errors.Unavailable(
                "The database is out of resources; retry later",
                retry_after=5,
                reason="out_of_resources",
            )
        if sqlstate.startswith("57P"):
            return errors.Unavailable(
                "The database is not accepting connections; retry later", reason="not_accepting"
            )
        if sqlstate[:2] == "28":
            # A new pooled connection refused (28P01, 28000): a database password rotated
            # under running processes (deploy/README.md, "Rotating secrets"). Transient for
            # the IdP; /readyz and the error log tell the operator.
            return errors.Unavailable(
                "The database refused the service's credentials; retry later",
                retry_after=5,
                reason="credentials_refused",
            )
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.PostgresConnectionError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError,
    ):
        # SQLSTATE class 08, socket errors, a connection closed under us: the database went
        # away mid-request.
        return errors.Unavailable("The database is unreachable; retry later", reason="unreachable")
    return None
