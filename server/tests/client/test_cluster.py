"""A real 3-member cluster: failover of reads and writes, watch resume on another member, membership, move-leader."""

from __future__ import annotations

import asyncio
import time

import pytest
from kvetch.client import Client, errors


async def retry_write(c: Client, key: str, value: str, timeout: float = 20.0) -> int:
    """Writes are never retried by the client once sent; the test retries across an election."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return (await c.put(key, value)).header.revision
        except errors.UnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def retry_unhealthy(fn, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """Reconfiguration is refused for a few seconds after start ("etcdserver: unhealthy cluster")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await fn()
        except errors.UnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
def three(cluster_factory):  # type: ignore[no-untyped-def]
    return cluster_factory(3)


def test_failover_when_a_member_dies(three) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client(three.endpoints, timeout=10, dial_timeout=1) as c:
            await c.put("k", "v0")
            three.members[0].kill()
            # reads keep working: round robin skips the dead member, retries go elsewhere
            for _ in range(6):
                assert (await c.get("k")).kvs[0].value == b"v0"
            await retry_write(c, "k", "v1")
            for _ in range(6):
                r = await c.get("k")
                assert r.kvs[0].value == b"v1"
            ml = await c.member_list()
            assert len(ml.members) == 3

    asyncio.run(main())


def test_watch_moves_to_another_member_without_losing_events(three) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client(three.endpoints, timeout=10, dial_timeout=1) as c:
            w = await c.watch("w/", prefix=True)
            await c.put("w/0", "a")
            got = []

            async def first() -> None:
                async for ev in w.events():
                    got.append(ev)
                    return

            await asyncio.wait_for(first(), 20)
            victim = next(m for m in three.members if m.endpoint == c.watcher.endpoint)
            others = [m.endpoint for m in three.members if m is not victim]
            victim.kill()
            async with Client(others, timeout=10) as writer:
                for i in range(1, 4):
                    await retry_write(writer, f"w/{i}", str(i))

            async def rest() -> None:
                async for ev in w.events():
                    got.append(ev)
                    if len(got) == 4:
                        return

            await asyncio.wait_for(rest(), 30)
            assert [e.kv.key for e in got] == [b"w/0", b"w/1", b"w/2", b"w/3"]
            assert c.watcher.endpoint in others

    asyncio.run(main())


def test_membership_and_move_leader(three, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client(three.endpoints, timeout=10) as c:
            ml = await c.member_list()
            assert sorted(m.name for m in ml.members) == ["m0", "m1", "m2"]
            added = await retry_unhealthy(lambda: c.cluster.member_add(["http://127.0.0.1:1"], is_learner=True))
            assert added.member.isLearner and len(added.members) == 4
            new_id = added.member.ID
            upd = await c.cluster.member_update(new_id, ["http://127.0.0.1:2"])
            assert any(m.peerURLs == ["http://127.0.0.1:2"] for m in upd.members)
            with pytest.raises(errors.FailedPreconditionError) as ei:
                await c.cluster.member_promote(new_id)  # never started, so not in sync
            assert "learner" in ei.value.message
            rem = await retry_unhealthy(lambda: c.cluster.member_remove(new_id))
            assert len(rem.members) == 3
            with pytest.raises(errors.MemberNotFoundError):
                await c.cluster.member_remove(new_id)

            statuses = [await c.maintenance.status(endpoint=ep) for ep in three.endpoints]
            leader = statuses[0].leader
            leader_ep = next(ep for ep, st in zip(three.endpoints, statuses, strict=True) if st.header.member_id == leader)
            target = next(st.header.member_id for st in statuses if st.header.member_id != leader)
            await c.maintenance.move_leader(target, endpoint=leader_ep)
            st = await c.maintenance.status(endpoint=leader_ep)
            assert st.leader == target

    asyncio.run(main())
