"""A `scim-service publisher` process killed mid-delivery (SIGKILL, then a new one): the event
is delivered again with the same id and nothing is lost. The publisher in-process:
integration/test_publisher.py."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any

import asyncpg
import msgspec

from scim_service.app import create_app
from scim_service.config import Settings
from tests.conftest import REPO, Tenant
from tests.support import Receiver, free_port, make_user, pending, service_env, until
from tests.support import fixture_receiver as fixture_receiver


async def _empty(db: asyncpg.Connection) -> bool:
    return await pending(db) == 0


def _publisher_process(database_url: str, webhook_url: str) -> subprocess.Popen[bytes]:
    env = service_env(
        DATABASE_URL=database_url,
        SCIM_WEBHOOK_URL=webhook_url,
        SCIM_PORT=str(free_port()),
        SCIM_PUBLISHER_POLL_INTERVAL="0.05",
        SCIM_EVENTS_RETRY_SCHEDULE="0.05",
        # A killed publisher's leases run out after this long; then the next one takes over.
        SCIM_WEBHOOK_TIMEOUT="2",
        SCIM_PUBLISHER_LEASE_SECONDS="7",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "scim_service", "publisher"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_publisher_killed_mid_delivery_redelivers_same_id(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    database_url: str,
) -> None:
    """The publisher sent the event but died before recording the delivery: a new publisher
    sends it again, with the same id, and nothing is lost."""
    hold = asyncio.Event()

    async def hang_first(entry: dict[str, Any]) -> int:
        if len(receiver.received) == 1:
            await hold.wait()  # the first publisher never gets its answer
        return 200

    receiver.respond = hang_first
    writer = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, webhook_url=receiver.url))
    )
    await make_user(writer, tenant, "killed@example.com")
    first = _publisher_process(database_url, receiver.url)
    try:
        await until(lambda: receiver.received, timeout=30, what="the first attempt")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    hold.set()
    assert await pending(db) == 1, "the delivery was never recorded"
    row = await db.fetchrow("SELECT attempts, lease_owner FROM outbox")
    assert row["attempts"] == 1 and row["lease_owner"], "the attempt was counted at claim time"
    second = _publisher_process(database_url, receiver.url)
    try:
        await until(lambda: receiver.accepted, timeout=30, what="the redelivery")
        await until(lambda: _empty(db), what="outbox drained")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=15)
    assert second.returncode == 0
    assert (
        receiver.received[0]["headers"]["webhook-id"]
        == receiver.accepted[-1]["headers"]["webhook-id"]
    )
