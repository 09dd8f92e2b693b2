"""The README stays true: its verification code works, its variables and commands exist."""

from __future__ import annotations

import argparse
import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from scim_service.cli import build_parser
from scim_service.config import Settings, rewrite_readme
from scim_service.events.retry import retry_delay
from scim_service.events.sinks.base import Outbound
from scim_service.events.sinks.webhook import WebhookSink
from scim_service.signing import Signer, generate_secret, generate_signing_key
from tests.conftest import REPO
from tests.support import README


def verify_example() -> dict[str, Any]:
    block = README.split("<!-- verify-example -->", 1)[1].split("<!-- /verify-example -->", 1)[0]
    code = block.split("```python", 1)[1].rsplit("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


async def test_readme_verification_code_accepts_a_real_delivery(aiohttp_server: Any) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    secret = generate_secret()
    private, public = generate_signing_key()
    sink = WebhookSink(str(server.make_url("/hook")), Signer([secret], private))
    await sink.open()
    try:
        body = b'{"specversion":"1.0","id":"3f0c2a1e-6a43-4c0e-9a55-1f7b8a4a2b10","data":{}}'
        event = Outbound(
            seq=1,
            id="3f0c2a1e-6a43-4c0e-9a55-1f7b8a4a2b10",
            type="user.updated",
            org_id="o",
            subject="s",
            payload=body,
        )
        [outcome] = await sink.deliver([event])
    finally:
        await sink.close()
    assert outcome.ok
    [(got, headers)] = received
    example = verify_example()
    assert example["verify_v1"](got, headers, secret)["id"] == event.id
    assert example["verify_v1a"](got, headers, public) is True
    assert example["verify_v1a"](got.replace(b"user", b"USER") + b" ", headers, public) is False
    _, other_public = generate_signing_key()
    assert example["verify_v1a"](got, headers, other_public) is False


def test_the_settings_table_is_the_declared_settings() -> None:
    """The README's table is made from scim_service/config.py's declarations (regenerate with
    `python -m scim_service.config README.md`)."""
    assert rewrite_readme(README) == README, "run: python -m scim_service.config README.md"


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    source = (REPO / "scim_service" / "config.py").read_text("utf-8")
    in_code = set(re.findall(r'"(SCIM_[A-Z_]+|DATABASE_URL)"', source))
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(SCIM_[A-Z_]+|DATABASE_URL)`", table))
    assert in_code - documented == set(), "settings missing from the README"
    assert documented - in_code == set(), "the README documents settings that do not exist"


CLI_BLOCK = README.split("## CLI", 1)[1].split("```", 2)[1]
COMMAND_WORD = re.compile(r"[a-z][a-z|-]*")


@pytest.mark.parametrize(
    "line", [ln for ln in CLI_BLOCK.splitlines() if ln.startswith("scim-service ")]
)
def test_every_documented_command_exists(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each CLI line of the README names a real subcommand, and every option it shows exists."""
    usage = re.split(r"\s{2,}", line)[0]
    words = []
    for w in usage.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z|-]*", w):
            break
        words.append(w.split("|")[0])  # `enable|disable` → enable
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*words, "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for option in re.findall(r"--[a-z][a-z-]*", usage):
        assert option in help_text, f"{' '.join(words)}: no option {option}"


def command_paths() -> set[str]:
    """Every leaf command of the CLI, as words: `org scim enable`, `events orphans move`, ..."""

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[str]:
        choices = next(
            (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        if not choices:
            yield " ".join(path)
            return
        for name, sub in choices.items():
            yield from walk(sub, [*path, name])

    return set(walk(build_parser(), []))


def named_commands(text: str) -> set[str]:
    """The command paths `scim-service ...` lines name. `a|b` names both; ` | ` separates
    subcommands of the first word's command: `org create NAME | scim enable|disable ORG_ID`
    names `org create`, `org scim enable` and `org scim disable`."""
    named = set()
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("scim-service "):
            continue
        usage = re.split(r"\s{2,}", line.removeprefix("scim-service "))[0]
        parent: list[str] = []
        for i, segment in enumerate(usage.split(" | ")):
            words = list(itertools.takewhile(COMMAND_WORD.fullmatch, segment.split()))
            if not words:
                continue
            if i == 0:
                parent = words[:1]
            else:
                words = parent + words
            for path in itertools.product(*(w.split("|") for w in words)):
                named.add(" ".join(path))
    return named


def test_every_command_is_in_the_readme_and_the_cli_docstring() -> None:
    """Each command of the CLI appears in the README's CLI block and in cli.py's docstring."""
    import scim_service.cli

    commands = command_paths()
    assert len(commands) >= 30
    readme = named_commands(CLI_BLOCK)
    docstring = named_commands(scim_service.cli.__doc__ or "")
    assert commands - readme == set(), "missing from the README's CLI block"
    assert commands - docstring == set(), "missing from cli.py's docstring"


def test_retry_window_is_the_default_schedules() -> None:
    """The README's retry window is computed from the defaults: the last attempt comes after
    the schedule's first SCIM_EVENTS_MAX_ATTEMPTS - 1 delays (each ±20%, the publisher's
    retry_delay), and that is within SCIM_EVENTS_MAX_AGE_HOURS, so attempts run out first."""
    defaults = Settings()
    schedule = defaults.events_retry_schedule
    failed = range(1, defaults.events_max_attempts)  # the attempts followed by another one
    nominal = sum(schedule[min(a - 1, len(schedule) - 1)] for a in failed)
    for attempt in failed:  # what the publisher waits after each, jitter included
        base = schedule[min(attempt - 1, len(schedule) - 1)]
        assert 0.8 * base <= retry_delay(schedule, attempt, None) <= 1.2 * base
    hours = nominal / 3600
    assert 1.2 * hours < defaults.events_max_age_hours
    text = " ".join(README.split())
    assert f"its {defaults.events_max_attempts}th and last attempt" in text
    assert f"about {hours:.1f} hours after its first" in text
    assert f"add up to {nominal:,.0f} s" in text
    assert f"between {hours * 0.8:.1f} and {hours * 1.2:.1f} hours" in text
    assert f"first {defaults.events_max_attempts - 1} delays" in text
    assert f"about {hours:.1f} hours with the default schedule" in text  # the contract, item 4
    assert "four days" not in text


def test_idp_section_covers_what_an_idp_admin_needs() -> None:
    """ "Connect an identity provider" names the public HTTPS requirement, Okta's Push Groups,
    Entra's aadOptscim062020 flag, JumpCloud's real test user, and the troubleshooting
    commands; every golden file it cites exists."""
    section = README.split("## Connect an identity provider", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "must be public HTTPS",
        "### JumpCloud",
        "### Okta",
        "### Microsoft Entra ID",
        "### Test Connection fails",
        "**Push Groups**",
        "?aadOptscim062020",
        "Start provisioning",
        "Sync only assigned users and groups",
        "creates and deletes a real user",
        "scim-service activity ORG_ID --errors",
        "scim-service org status ORG_ID",
        "409",
    ):
        assert needed in section, needed
    cited = re.findall(r"`(tests/idp/[\w/]+\.json)`", section)
    assert len(cited) >= 3
    for path in cited:
        assert (REPO / path).is_file(), path
