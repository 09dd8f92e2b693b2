"""The `scim-service` console script: every command (`--help` on each says more; README, "CLI").

    scim-service serve                      HTTP server (and the event publisher)
    scim-service publisher                  only the event publisher (+ /healthz, /readyz, /metrics)
    scim-service migrate [--to VERSION]     apply pending migrations (up to VERSION) and exit
    scim-service config check               the effective configuration, secrets masked
    scim-service org create NAME | list | show ORG_ID | scim enable|disable ORG_ID
    scim-service org status ORG_ID          directory status: SCIM, tokens, IdPs, errors, events
    scim-service org guard show|set|release|reject|discard ORG_ID   the deprovisioning guard
    scim-service activity ORG_ID [--errors] [--follow]   the SCIM activity log
    scim-service roles ORG_ID [--map ... | --default ROLE | --source ... | --file F | --clear]
    scim-service token create ORG_ID | list ORG_ID | revoke TOKEN_ID
    scim-service credential create --scope SCOPE | list | revoke CREDENTIAL_ID
    scim-service endpoint create --url URL | list | pause | resume | delete ENDPOINT_ID
    scim-service audit [--org ORG_ID]       the admin audit trail
    scim-service user setup-complete ORG_ID USER_ID
    scim-service events stats | dead-letters | retry | replay | tail | signing-key | keygen
    scim-service events orphans move SINK --to SINK | orphans discard SINK

Every command that prints data accepts --json. Exit codes: 0 success, 1 the operation failed
(e.g. unknown organization), 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Sequence

import asyncpg

from scim_service import errors
from scim_service.cli import (
    activity,
    config,
    credentials,
    endpoints,
    events,
    org,
    roles,
    server,
    token,
    users,
)
from scim_service.cli.db import AUDIT, intent_of
from scim_service.config import ConfigError, StartupError, load_settings
from scim_service.logs import configure_logging, get_logger
from scim_service.redact import mask_text

__all__ = ["build_parser", "execute", "main"]

GROUPS = (server, org, roles, activity, token, endpoints, credentials, config, users, events)
"""The command groups, in the order `--help` lists them; each adds its commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-service",
        description="SCIM 2.0 provisioning service (configuration: environment)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _run(coro: Awaitable[int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coro)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"scim-service: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    # The long-running commands log to stdout and report a fatal failure as a log line (JSON
    # where logs are JSON: log pipelines parse every line); the others answer on stdout, so
    # they log to stderr and print a failure for the person at the prompt.
    long_running = args.func in (server.cmd_serve, server.cmd_publisher)
    AUDIT.set(intent_of(args))
    supervisor = args.func is server.cmd_serve and settings.worker_count > 1
    worker = "supervisor" if supervisor else None
    configure_logging(
        settings.log_format, settings.log_level, stderr=not long_running, worker=worker
    )
    return execute(args.func(args, settings), daemon=long_running and settings.log_format == "json")


def execute(command: Awaitable[int], *, daemon: bool) -> int:
    """Run a command's coroutine; its failures become an exit status and one message (a JSON
    log line for a daemon whose logs are JSON, a line on stderr otherwise)."""
    try:
        return _run(command)
    except ConfigError as exc:
        print(f"scim-service: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    except StartupError as exc:
        _fatal(daemon, "startup_failed", mask_text(str(exc)))
        return 1
    except errors.ScimError as exc:
        _fatal(daemon, "command_failed", f"error: {exc.detail}")
        return 1
    except BrokenPipeError:  # `scim-service ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, asyncpg.PostgresError) as exc:
        _fatal(
            daemon, "database_error", f"database error: {type(exc).__name__}: {mask_text(str(exc))}"
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        if daemon:  # one JSON line with the traceback, not a raw dump
            get_logger("scim_service.cli").exception("fatal_error")
            return 1
        raise


def _fatal(daemon: bool, event: str, message: str) -> None:
    if daemon:
        get_logger("scim_service.cli").error(event, message=message)
    else:
        print(f"scim-service: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
