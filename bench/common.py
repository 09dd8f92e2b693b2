"""What the benchmark's modules share: messages, the targets under test, HTTP helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONCURRENCY = (1, 10)


class Failure(Exception):
    """A prerequisite is missing or a step failed: printed as one clear message."""


def say(msg: str) -> None:
    print(msg, flush=True)


# --- phase 0: prerequisites ------------------------------------------------------------------


def with_database(dsn: str, name: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def http_json(
    method: str, url: str, token: str, body: Any = None, timeout: float = 60
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


class Target:
    """One server under test: its base URL, its SCIM path prefix and its token."""

    def __init__(self, key: str, base: str, prefix: str, token: str, pid: int | None) -> None:
        self.key, self.base, self.prefix, self.token, self.pid = key, base, prefix, token, pid

    def url(self, path: str) -> str:
        return self.base + self.prefix + path


# --- the benchmark -----------------------------------------------------------------------------
