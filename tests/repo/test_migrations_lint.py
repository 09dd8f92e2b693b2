"""Every migration is linted with squawk (PyPI squawk-cli, in the dev extras); a violation that
is not in the baseline below fails. The baseline is what the migrations had when the lint was
introduced, less what was fixed since (deploy/README.md, "Online migrations"); a new migration
must add none, and fixing an old one must shrink it (the test says so).

A migration is linted step by step, as the runner applies it (scim_service/store/migrate.py,
`-- migrate:step KIND`): a transactional step with --assume-in-transaction (so an index on a
table created in the same step, which blocks nobody, is not reported), a `no-transaction` step
without it (where CREATE INDEX CONCURRENTLY belongs). A line `-- squawk-ignore RULE` before a
statement silences that rule for it; each says why. Rules left out, with the reason:
- prefer-robust-stmts (IF NOT EXISTS): a transactional step leaves nothing behind when it
  fails, and a `no-transaction` step is written to be rerun;
- require-lock-timeout, require-statement-timeout: the runner sets lock_timeout (1 s, retried)
  for every step, and lifts statement_timeout on purpose;
- prefer-bigint-over-int, prefer-identity: column-type style, not lock safety.
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scim_service.store import migrate

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "sql" / "migrations"
EXCLUDED = (
    "prefer-robust-stmts",
    "require-lock-timeout",
    "require-statement-timeout",
    "prefer-bigint-over-int",
    "prefer-identity",
)
# (file, rule) -> violations allowed.
BASELINE: dict[tuple[str, str], int] = {}


def squawk() -> str | None:
    beside = Path(sys.executable).with_name("squawk")
    return str(beside) if beside.exists() else shutil.which("squawk")


def violations(tmp: Path) -> collections.Counter[tuple[str, str]]:
    binary = squawk()
    if binary is None:
        pytest.skip("squawk missing (pip install squawk-cli; in the dev extras)")
    owner: dict[str, str] = {}
    by_kind: dict[bool, list[str]] = {True: [], False: []}
    for m in migrate.discover(MIGRATIONS):
        for number, step in enumerate(m.steps(), start=1):
            path = tmp / f"{m.version:04d}_{m.name}.step{number}.sql"
            path.write_text(step.sql, "utf-8")
            owner[path.name] = f"{m.version:04d}_{m.name}.sql"
            by_kind[step.transactional].append(str(path))
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    for transactional, files in by_kind.items():
        if not files:
            continue
        out = subprocess.run(
            [binary, "--reporter", "json", "--pg-version", "15"]
            + (["--assume-in-transaction"] if transactional else [])
            + [f"--exclude={rule}" for rule in EXCLUDED]
            + files,
            capture_output=True,
            text=True,
            check=False,
        )
        for v in json.loads(out.stdout or "[]"):
            found[(owner[Path(v["file"]).name], v["rule_name"])] += 1
    return found


def test_no_new_migration_lint_violations(tmp_path: Path) -> None:
    found = violations(tmp_path)
    new = {k: n for k, n in found.items() if n > BASELINE.get(k, 0)}
    assert not new, f"new squawk violations (file, rule): count: {new}"
    fixed = {k: n for k, n in BASELINE.items() if found.get(k, 0) < n}
    assert not fixed, f"fewer violations than the baseline, shrink BASELINE: {fixed}"


def test_the_lint_sees_a_blocking_index() -> None:
    """The step split keeps the lint honest: an index built without CONCURRENTLY on an existing
    table, in a step of its own, is still reported."""
    binary = squawk()
    if binary is None:
        pytest.skip("squawk missing (pip install squawk-cli; in the dev extras)")
    out = subprocess.run(
        [binary, "--reporter", "json", "--pg-version", "15", "--assume-in-transaction"],
        input="CREATE INDEX events_x ON events (type);\n",
        capture_output=True,
        text=True,
        check=False,
    )
    rules = {v["rule_name"] for v in json.loads(out.stdout or "[]")}
    assert "require-concurrent-index-creation" in rules, out.stdout
