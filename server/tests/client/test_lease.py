"""Lease API: grant, time-to-live with keys, list, keep-alive (stream and once), revoke, typed errors."""

from __future__ import annotations

import asyncio

import pytest
from kvetch.client import Client, errors


def test_lease_lifecycle(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            g = await c.lease.grant(30)
            assert g.TTL == 30 and g.ID > 0
            fixed = await c.lease.grant(20, lease_id=0x1234)
            assert fixed.ID == 0x1234
            await c.put("lk1", "v", lease=g.ID)
            await c.put("lk2", "v", lease=g.ID)
            ttl = await c.lease.time_to_live(g.ID, keys=True)
            assert ttl.grantedTTL == 30 and 0 < ttl.TTL <= 30 and sorted(ttl.keys) == [b"lk1", b"lk2"]
            ids = {ls.ID for ls in (await c.lease.leases()).leases}
            assert {g.ID, 0x1234} <= ids
            once = await c.lease.keep_alive_once(g.ID)
            assert once.ID == g.ID and once.TTL == 30
            n = 0
            async for resp in c.lease.keep_alive(fixed.ID):
                assert resp.TTL == 20
                n += 1
                if n == 2:
                    break
            await c.lease.revoke(g.ID)
            assert (await c.get("lk1")).count == 0
            gone = await c.lease.time_to_live(g.ID)
            assert gone.TTL == -1
            with pytest.raises(errors.LeaseNotFoundError) as ei:
                await c.lease.revoke(g.ID)
            assert ei.value.message == "etcdserver: requested lease not found"
            with pytest.raises(errors.LeaseNotFoundError):
                await c.lease.keep_alive_once(g.ID)
            with pytest.raises(errors.LeaseNotFoundError):
                await c.put("x", "y", lease=g.ID)

    asyncio.run(main())


def test_keep_alive_stream_ends_when_lease_revoked(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            g = await c.lease.grant(3)
            seen = []

            async def keep() -> None:
                async for resp in c.lease.keep_alive(g.ID):
                    seen.append(resp.TTL)

            task = asyncio.ensure_future(keep())
            while not seen:
                await asyncio.sleep(0.05)
            await c.lease.revoke(g.ID)
            with pytest.raises(errors.LeaseNotFoundError):
                await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_keep_alive_survives_a_cut_connection(server) -> None:  # type: ignore[no-untyped-def]
    from .test_watch import CuttableProxy

    async def main() -> None:
        proxy = CuttableProxy(server.endpoint)
        ep = await proxy.start()
        async with Client([ep], timeout=5, dial_timeout=1) as c:
            g = await c.lease.grant(3)
            seen: list[int] = []

            async def keep() -> None:
                async for resp in c.lease.keep_alive(g.ID):
                    seen.append(resp.TTL)

            task = asyncio.ensure_future(keep())

            async def until(n: int) -> None:
                while len(seen) < n:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(until(1), 10)
            proxy.cut()
            await asyncio.sleep(1.0)
            proxy.restore()
            before = len(seen)
            await asyncio.wait_for(until(before + 2), 15)
            # the lease outlived its 3 s TTL only because renewals resumed
            await asyncio.sleep(0.1)
            ttl = await c.lease.time_to_live(g.ID)
            assert ttl.TTL > 0
            task.cancel()
        await proxy.close()

    asyncio.run(main())
