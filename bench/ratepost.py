"""Open-loop POST /Users client at a fixed rate (the webhook latency scenario).

Request n is sent at t0 + n/rate (at most `inflight` at once), whatever the earlier ones do;
each records when it was sent, when its answer arrived, the status and the new user's id. The
run is bounded: `rate * duration` requests, and a deadline of duration + 30 s.

    python bench/ratepost.py URL TOKEN RATE DURATION INFLIGHT TAG OUT.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main(
    url: str, token: str, rate: float, duration: float, inflight: int, tag: str
) -> dict[str, object]:
    total = int(rate * duration)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    results: list[tuple[float, float, int, str | None]] = []
    sem = asyncio.Semaphore(inflight)
    connector = aiohttp.TCPConnector(limit=inflight)
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> None:
            name = f"hook.{tag}.{n}@example.com"
            body = json.dumps(
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name,
                    "name": {"givenName": "Hook", "familyName": "Bench"},
                    "displayName": "Hook Bench",
                    "emails": [{"value": name, "type": "work", "primary": True}],
                    "active": True,
                }
            )
            try:
                sent = time.time()
                async with session.post(url, data=body, headers=headers) as resp:
                    data = await resp.read()
                    returned = time.time()
                    uid = json.loads(data).get("id") if resp.status == 201 else None
                    results.append((sent, returned, resp.status, uid))
            except (aiohttp.ClientError, TimeoutError) as exc:
                results.append((time.time(), time.time(), 0, repr(exc)))
            finally:
                sem.release()

        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + duration + 30
        tasks = []
        for n in range(total):
            delay = start + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            if loop.time() > deadline:
                sem.release()
                break
            tasks.append(asyncio.create_task(one(n)))
        sending = loop.time() - start
        if tasks:
            await asyncio.wait(tasks, timeout=max(1.0, deadline - loop.time()))
    return {"sent_seconds": sending, "planned": total, "results": results}


if __name__ == "__main__":
    u, t, r, d, i, tag, o = sys.argv[1:8]
    data = asyncio.run(main(u, t, float(r), float(d), int(i), tag))
    with open(o, "w") as f:
        json.dump(data, f)
