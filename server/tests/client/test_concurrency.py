"""Session, Mutex and Election; the mutex excludes etcdctl 3.5's ``lock`` and vice versa."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest
from kvetch.client import Client
from kvetch.client.concurrency import Election, Mutex, Session

from .conftest import etcd_tool


def test_mutex_excludes_and_orders(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            s1 = await Session.create(c, ttl=10)
            s2 = await Session.create(c, ttl=10)
            m1, m2 = Mutex(s1, "lk"), Mutex(s2, "lk")
            await m1.lock()
            assert m1.key == f"lk/{s1.lease_id:x}"
            waiter = asyncio.ensure_future(m2.lock())
            await asyncio.sleep(0.3)
            assert not waiter.done()
            await m1.unlock()
            await asyncio.wait_for(waiter, 10)
            owner = await c.get("lk/", prefix=True, sort_target="create", sort_order="ascend", limit=1)
            assert owner.kvs[0].key.decode() == m2.key
            await m2.unlock()
            await s1.close()
            await s2.close()

    asyncio.run(main())


def test_mutex_interoperates_with_etcdctl_lock(server) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [etcd_tool("etcdctl"), "--endpoints", server.endpoint, "lock", "shared"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        held_key = proc.stdout.readline().strip()  # etcdctl prints the key once it holds the lock
        assert held_key.startswith("shared/")

        async def main() -> None:
            async with Client([server.endpoint], timeout=10) as c:
                s = await Session.create(c, ttl=10)
                m = Mutex(s, "shared")
                waiter = asyncio.ensure_future(m.lock())
                await asyncio.sleep(0.5)
                assert not waiter.done()  # etcdctl holds it
                proc.send_signal(signal.SIGINT)  # etcdctl unlocks on SIGINT
                await asyncio.wait_for(waiter, 15)
                assert (await c.get(held_key)).count == 0
                await m.unlock()
                await s.close()

        asyncio.run(main())
    finally:
        proc.kill()
        proc.wait()


def test_election(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            s1 = await Session.create(c, ttl=10)
            s2 = await Session.create(c, ttl=10)
            e1, e2 = Election(s1, "el"), Election(s2, "el")
            observer = Election(s1, "el")
            seen: list[bytes] = []

            async def observe() -> None:
                async for resp in observer.observe():
                    seen.append(resp.kvs[0].value)

            obs = asyncio.ensure_future(observe())
            await e1.campaign("one")
            assert (await e1.leader()).kvs[0].value == b"one"
            second = asyncio.ensure_future(e2.campaign("two"))
            await asyncio.sleep(0.3)
            assert not second.done()
            await e1.proclaim("uno")
            assert (await e2.leader()).kvs[0].value == b"uno"
            await e1.resign()
            await asyncio.wait_for(second, 10)
            assert (await e1.leader()).kvs[0].value == b"two"

            async def until_two() -> None:
                while b"two" not in seen:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(until_two(), 10)
            assert seen[:3] == [b"one", b"uno", b"two"]
            obs.cancel()
            await e2.resign()
            await s1.close()
            await s2.close()

    asyncio.run(main())


def test_session_expiry_is_seen(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            s = await Session.create(c, ttl=5)
            await c.lease.revoke(s.lease_id)
            await asyncio.wait_for(s.wait_done(), 10)
            assert s.expired

    asyncio.run(main())


def test_try_lock_and_not_leader(server) -> None:  # type: ignore[no-untyped-def]
    from kvetch.client.concurrency import LockedError, NoLeaderError, NotLeaderError

    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            s1 = await Session.create(c, ttl=10)
            s2 = await Session.create(c, ttl=10)
            m1, m2 = Mutex(s1, "t"), Mutex(s2, "t")
            await m1.try_lock()
            with pytest.raises(LockedError):
                await m2.try_lock()
            assert (await c.get("t/", prefix=True)).count == 1  # the loser cleaned up its key
            await m1.unlock()
            await m2.try_lock()
            await m2.unlock()
            e = Election(s1, "nobody")
            with pytest.raises(NoLeaderError):
                await e.leader()
            with pytest.raises(NotLeaderError):
                await e.proclaim("x")
            await s1.close()
            await s2.close()

    asyncio.run(main())
