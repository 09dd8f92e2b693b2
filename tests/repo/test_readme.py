"""The README stays true: its verification code works, its variables and commands exist."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from scim_service.cli import build_parser
from scim_service.config import rewrite_readme
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
