"""Every migration is linted with squawk (PyPI squawk-cli, in the dev extras); a violation that
is not in the baseline below fails. The baseline is what the released migrations had when the
lint was introduced (deploy/README.md, "Online migrations", says which of them still block);
a new migration must add none, and fixing an old one must shrink it (the test says so).

Squawk runs with --assume-in-transaction (as the runner applies them), so an index on a table
created in the same migration, which blocks nobody, is not reported. Rules left out, with the
reason:
- prefer-robust-stmts (IF NOT EXISTS): each migration runs in one transaction
  (scim_service/store/migrate.py), so a failed one leaves nothing behind to trip a rerun;
- require-lock-timeout, require-statement-timeout: the runner sets lock_timeout (1 s, retried)
  for every migration's transaction, and lifts statement_timeout on purpose;
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
BASELINE: dict[tuple[str, str], int] = {
    # 0008: events_position and events_org_position built under the migration's lock.
    ("0008_events_pull.sql", "require-concurrent-index-creation"): 2,
    # 0009: the resource_type CHECK replaced and validated under ACCESS EXCLUSIVE on events;
    # three indexes on existing tables (events, outbox, scim_tokens) built without CONCURRENTLY.
    ("0009_activity_guard.sql", "ban-drop-constraint"): 1,
    ("0009_activity_guard.sql", "constraint-missing-not-valid"): 1,
    ("0009_activity_guard.sql", "require-concurrent-index-creation"): 3,
}


def squawk() -> str | None:
    beside = Path(sys.executable).with_name("squawk")
    return str(beside) if beside.exists() else shutil.which("squawk")


def violations() -> collections.Counter[tuple[str, str]]:
    binary = squawk()
    if binary is None:
        pytest.skip("squawk missing (pip install squawk-cli; in the dev extras)")
    files = sorted(str(p.relative_to(REPO)) for p in MIGRATIONS.glob("*.sql"))
    out = subprocess.run(
        [binary, "--reporter", "json", "--pg-version", "15", "--assume-in-transaction"]
        + [f"--exclude={rule}" for rule in EXCLUDED]
        + files,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    found = json.loads(out.stdout or "[]")
    return collections.Counter((Path(v["file"]).name, v["rule_name"]) for v in found)


def test_no_new_migration_lint_violations() -> None:
    found = violations()
    new = {k: n for k, n in found.items() if n > BASELINE.get(k, 0)}
    assert not new, f"new squawk violations (file, rule): count: {new}"
    fixed = {k: n for k, n in BASELINE.items() if found.get(k, 0) < n}
    assert not fixed, f"fewer violations than the baseline, shrink BASELINE: {fixed}"
