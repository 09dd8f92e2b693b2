"""One child process of a multi-worker `serve` (scim_service/supervisor.py):
`python -m scim_service.worker`, started by the supervisor only.

It reads the settings from the environment as any command does (the supervisor adds the
embedded database's URL and switches migrations off: it ran them), plus what the supervisor
hands over: which slot it fills (`SCIM_WORKER_ID`: "1".."N" serves requests on the inherited
sockets, "publisher" delivers events), the inherited file descriptors, and the supervisor's
pid. It dies with its supervisor (PR_SET_PDEATHSIG), and tells it when it serves by writing
to the ready pipe.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

import msgspec

from scim_service.config import ConfigError, load_settings
from scim_service.redact import mask_text

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Be killed when the supervisor dies (Linux); exit at once if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # it died before the prctl took effect
        os._exit(1)


def main() -> int:
    from scim_service.cli import execute
    from scim_service.logs import configure_logging
    from scim_service.server import Inherited, serve
    from scim_service.supervisor import ENV_FDS, ENV_PARENT, ENV_WORKER, PUBLISHER_SLOT

    _die_with(int(os.environ[ENV_PARENT]))
    slot = os.environ[ENV_WORKER]
    ready_fd, main_fd, metrics_fd = os.environ[ENV_FDS].split(",")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"scim-service: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level, worker=slot)
    publisher = slot == PUBLISHER_SLOT
    if publisher:
        # Its pool serves nothing but the app's own checks: the deliveries have theirs.
        settings = msgspec.structs.replace(settings, db_pool_min=0, db_pool_max=1)
    else:
        settings = msgspec.structs.replace(settings, publisher_enabled=False)

    def ready() -> None:
        fd = int(ready_fd)
        try:
            os.write(fd, b"ready\n")
        finally:
            os.close(fd)

    inherited = Inherited(
        sock=None if main_fd == "-" else socket.socket(fileno=int(main_fd)),
        metrics_sock=None if metrics_fd == "-" else socket.socket(fileno=int(metrics_fd)),
        ready=ready,
    )
    role = "publisher" if publisher else "serve"
    return execute(
        serve(settings, role=role, inherited=inherited), daemon=settings.log_format == "json"
    )


if __name__ == "__main__":
    sys.exit(main())
