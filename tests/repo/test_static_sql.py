"""SQL lives in sql/: no statement text in the package's Python (pure: reads the source).

A string literal (or the literal start of an f-string) that begins like a SQL statement is
static SQL that belongs in sql/queries/*.sql as a named query (`-- name: x`, loaded into
store.db.QUERIES) or in a migration. Docstrings are prose and are not checked.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from scim_service.store.db import QUERIES, parse_query_file, resolve_includes

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "scim_service"

_STATEMENT = re.compile(
    r"""^\s*(
        SELECT\s | INSERT\s+INTO\s | UPDATE\s+\w+\s+SET\s | DELETE\s+FROM\s | WITH\s+\w+\s+AS\b
      | CREATE\s | ALTER\s | DROP\s | TRUNCATE\s | LOCK\s | SET\s+\w | RESET\s | LISTEN\s
      | NOTIFY\s | VACUUM\b | ANALYZE\b | EXPLAIN\s | COPY\s | GRANT\s | REVOKE\s
    )""",
    re.VERBOSE,
)

# Files whose SQL is built at run time, or waiting for a move, with the reason. The list is
# meant to shrink; an entry whose file no longer has SQL must go (checked below).
ALLOWED = {
    # The filter compiler: SCIM filters become WHERE fragments at run time, identifiers from a
    # fixed whitelist, every value a parameter (DESIGN: "identifiers come only from a fixed
    # whitelist").
    "scim_service/store/filters.py",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings (first statement of a body)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out.add(id(value))
    return out


def _is_statement(value: object) -> bool:
    return isinstance(value, str) and _STATEMENT.match(value) is not None


def static_sql(source: str) -> list[tuple[int, str]]:
    """(line, text) of each literal in `source` that starts like a SQL statement."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)  # its parts are judged by its start
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and _is_statement(head.value):
                found.append((node.lineno, head.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip and _is_statement(node.value):
            found.append((node.lineno, node.value))
    return sorted(found)


def _by_file() -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        hits = static_sql(path.read_text("utf-8"))
        if hits:
            out[str(path.relative_to(REPO))] = sorted(set(hits))
    return out


def test_the_check_finds_sql_and_ignores_prose() -> None:
    """A statement in a string (or an f-string) is found; a docstring, an HTTP method or a
    sentence starting with an SQL word is not."""
    source = '''
def f(conn):
    """SELECT is mentioned here, in prose."""
    conn.fetch("SELECT id FROM users WHERE org_id = $1", 1)
    conn.execute(f"CREATE DATABASE {name}")
    conn.execute("""
        UPDATE users SET attrs = $1
    """)
    method = "DELETE"
    help_ = "Delete the user"
'''
    assert [line for line, _ in static_sql(source)] == [4, 5, 6]


def test_no_static_sql_in_python() -> None:
    """Outside the allow-list, no Python file of the package holds SQL statement text."""
    found = _by_file()
    offenders = {f: hits for f, hits in found.items() if f not in ALLOWED}
    assert offenders == {}
    # An allow-list entry whose file has no SQL any more must go.
    assert sorted(ALLOWED - set(found)) == []


def test_named_queries_load() -> None:
    """Every named query is non-empty and every `-- include:` resolved (so the statements
    that end with outbox.sql's event_rows carry it, renumbered after their own parameters)."""
    assert all(body.strip() for body in QUERIES.values())
    assert not any(
        line.startswith("-- include:") for body in QUERIES.values() for line in body.splitlines()
    )
    assert "$14::text[]" in QUERIES["update_group"]  # five of its own, then event_rows' nine
    assert "$9::text[]" in QUERIES["insert_events"]


def test_includes_are_renumbered_after_the_statement() -> None:
    """An included fragment's $n follow the highest parameter before the include line; an
    unknown fragment is refused."""
    queries = parse_query_file(
        "-- name: frag\n-- explained at home\nb AS (SELECT $1::int AS x, $2::int AS y)\n"
        "-- name: stmt\nWITH a AS (SELECT $1::int, $3::int),\n-- include: frag\nSELECT 1;\n"
    )
    resolved = resolve_includes(queries)
    assert resolved["stmt"] == (
        "WITH a AS (SELECT $1::int, $3::int),\nb AS (SELECT $4::int AS x, $5::int AS y)\nSELECT 1;"
    )
    commented = parse_query_file(
        "-- name: frag\nx = $1\n-- name: stmt\n-- the org, as $9 in words\nSELECT $1 WHERE\n"
        "-- include: frag\n"
    )
    assert resolve_includes(commented)["stmt"].endswith("SELECT $1 WHERE\nx = $2\n")
    bad = parse_query_file("-- name: stmt\nWITH\n-- include: nowhere\nSELECT 1;\n")
    try:
        resolve_includes(bad)
    except ValueError as exc:
        assert "nowhere" in str(exc)
    else:
        raise AssertionError("an unknown include was accepted")
