"""Serve the peer, scim2-server, the fastest way it runs, with the benchmark's data preloaded.

Runs in the peer's own virtual environment (bench/.venv-peer, from requirements-peer.txt):
its ASGIApplication over an AsyncInMemoryStorage, under uvicorn with uvloop and httptools,
one process (the storage is in that process's memory). Users and groups are validated with the
peer's own models and stored before the server starts listening, since POSTing 100,000 users
one by one would take most of the time budget. Authentication: a static bearer token, checked
the way scim2-server's own BearerTokenApplication does (a set lookup).

    python bench/peer_launcher.py --port 18081 --users 100000 --token T
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataset
import uvicorn
from scim2_models import Context, Meta, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider


class BenchApplication(ASGIApplication):
    """ASGIApplication accepting one static bearer token (as BearerTokenApplication does)."""

    def __init__(self, *args: Any, token: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = {token}

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            raise UnauthorizedException


def build(users: int, big: int, team: int) -> tuple[ScimService, InMemoryStorage, Any]:
    provider = load_default_provider()
    service = ScimService(provider, secret="scim-bench-peer")  # noqa: S106 - local benchmark
    types = {rt.name: rt for rt in provider.resource_types}
    user_model = service.get_model(types["User"])
    group_model = service.get_model(types["Group"])
    now = datetime.datetime.now(datetime.UTC)
    version = itertools.count(1)
    resources = []
    for i in range(users):
        r = user_model.model_validate(
            dataset.user_body(i), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        r.id = str(dataset.user_id(i))
        r.meta = Meta(
            resource_type="User", created=now, last_modified=now, version=f'W/"{next(version)}"'
        )
        resources.append(r)
    for name, size in ((dataset.BIG_GROUP_NAME, big), (dataset.TEAM_GROUP_NAME, team)):
        body = dataset.group_body(name)
        body["members"] = [
            {"value": str(dataset.user_id(i)), "display": dataset.display_name(i), "type": "User"}
            for i in range(min(size, users))
        ]
        g = group_model.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        g.id = str(dataset.group_id(name))
        g.meta = Meta(
            resource_type="Group", created=now, last_modified=now, version=f'W/"{next(version)}"'
        )
        resources.append(g)
    storage = InMemoryStorage()
    storage.resources = resources  # indexes ids and unique values, as create() would
    storage.versions = version
    return service, storage, provider


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--big-group", type=int, default=50_000)
    p.add_argument("--team-group", type=int, default=dataset.TEAM_SIZE)
    p.add_argument("--token", required=True)
    args = p.parse_args()

    started = time.perf_counter()
    service, storage, provider = build(args.users, args.big_group, args.team_group)
    app = BenchApplication(
        AsyncInMemoryStorage(storage), provider, service=service, token=args.token
    )
    print(f"peer loaded users={args.users} seconds={time.perf_counter() - started:.1f}", flush=True)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
