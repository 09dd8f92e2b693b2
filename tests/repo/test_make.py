"""The Makefile's targets against what the docs tell a reader to run, and the quick lane's
folders against the folders of tests/."""

from __future__ import annotations

import re

from tests.conftest import REPO

MAKEFILE = (REPO / "Makefile").read_text()
TARGETS = set(re.findall(r"^([a-z][a-z0-9-]*):", MAKEFILE, re.M))
DOCS = [REPO / "README.md", REPO / "tests" / "README.md", REPO / "deploy" / "README.md"]


def test_every_documented_make_command_is_a_target() -> None:
    missing = {
        f"{doc.relative_to(REPO)}: make {name}"
        for doc in DOCS
        for name in re.findall(r"(?:`|^)make ([a-z][a-z0-9-]*)\b", doc.read_text(), re.M)
        if name not in TARGETS
    }
    assert not missing, sorted(missing)


def test_the_quick_lane_runs_every_test_folder_but_processes() -> None:
    recipe = MAKEFILE.split("\ntest-quick:", 1)[1].split("\n\n", 1)[0]
    lane = set(re.findall(r"tests/(\w+)", recipe))
    folders = {
        p.name for p in (REPO / "tests").iterdir() if p.is_dir() and any(p.glob("test_*.py"))
    }
    assert lane == folders - {"processes"}, "a new tests/ folder must join or skip the quick lane"
