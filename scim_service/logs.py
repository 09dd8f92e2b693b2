"""structlog, configured once per process.

JSON lines on stdout in production, a console renderer on a terminal. `merge_contextvars`
comes first so the request middleware can bind `request_id` (and the org id) once. Event
names are stable snake_case strings; values are key/value fields, never formatted into the
event name. Nothing here ever sees a token: callers log token ids and prefixes only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from scim_service.redact import redact_processor

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def configure_logging(
    log_format: str = "json",
    level: str = "info",
    *,
    cache: bool = True,
    stderr: bool = False,
    worker: str | None = None,
) -> None:
    """Configure structlog (and the stdlib root logger it may receive records from).

    `cache` lets each logger bind its processors once (structlog's performance advice); tests
    that reconfigure logging in one process pass False. `worker`: the process's place under a
    `serve` with several workers ("supervisor", "1".."N", "publisher"), a field of every line.
    """
    numeric = _LEVELS.get(level, logging.INFO)
    stamp: list[Any] = [] if worker is None else [_WorkerField(worker)]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        *stamp,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "console":
        renderer: Any = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        # Tracebacks formatted first (plain text) so the redaction sees them too.
        processors = [*shared, structlog.processors.format_exc_info, redact_processor, renderer]
    else:
        processors = [
            *shared,
            structlog.processors.format_exc_info,
            redact_processor,  # after format_exc_info: tracebacks are masked too
            structlog.processors.JSONRenderer(),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No fixed file: each logger writes to whatever sys.stdout is when it is created.
        # (`stderr`: CLI commands, whose stdout is their answer, e.g. `--json` output.)
        # WriteLogger: the line and its newline in one write (processes sharing a pipe).
        logger_factory=_StderrLoggerFactory() if stderr else structlog.WriteLoggerFactory(),
        cache_logger_on_first_use=cache,
    )
    # Libraries log through the stdlib (asyncpg's pool warnings, asyncio's "Task exception was
    # never retrieved", Python warnings): keep their noise at warning, route it to stderr, and
    # render it like our own lines, so in JSON mode every line is one JSON object, tracebacks
    # included (as an "exception" field).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                *stamp,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *(
                    [structlog.dev.ConsoleRenderer(colors=False)]
                    if log_format == "console"
                    else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
                ),
            ],
        )
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler], force=True)
    logging.captureWarnings(True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class _WorkerField:
    """Adds `worker` to every event dict (which process of a multi-worker `serve` wrote it)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("worker", self.worker)
        return event


class _StderrLoggerFactory:
    """Like WriteLoggerFactory, on whatever sys.stderr is when a logger is created."""

    def __call__(self, *args: Any) -> structlog.WriteLogger:
        return structlog.WriteLogger(sys.stderr)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
