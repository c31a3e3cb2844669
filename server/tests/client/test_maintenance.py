"""Maintenance API: status, alarms, defragment, hashes, snapshot, downgrade."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from kvetch.client import Client, errors

from .conftest import etcd_tool


def test_status_hash_defrag(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            await c.put("a", "1")
            st = await c.maintenance.status(endpoint=server.endpoint)
            assert st.leader == st.header.member_id and st.dbSize > 0 and st.raftIndex > 0 and st.version
            h1 = await c.maintenance.hash_kv()
            h2 = await c.maintenance.hash_kv(endpoint=server.endpoint)
            assert h1.hash == h2.hash and h1.hash != 0
            await c.put("b", "2")
            assert (await c.maintenance.hash_kv()).hash != h1.hash
            assert (await c.maintenance.hash_kv(h1.header.revision)).hash == h1.hash
            await c.maintenance.defragment(endpoint=server.endpoint)
            assert (await c.maintenance.hash()).hash != 0

    asyncio.run(main())


def test_alarms(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            assert not (await c.maintenance.alarm_list()).alarms
            empty = await c.maintenance.alarm_disarm()
            assert not empty.alarms
            mid = (await c.status()).header.member_id
            await c.maintenance.alarm_activate(mid, "NOSPACE")
            al = await c.maintenance.alarm_list()
            assert [(a.memberID, a.alarm) for a in al.alarms] == [(mid, 1)]
            with pytest.raises(errors.ResourceExhaustedError) as ei:
                await c.put("x", "y")
            assert ei.value.message == "etcdserver: mvcc: database space exceeded"
            dis = await c.maintenance.alarm_disarm()
            assert [(a.memberID, a.alarm) for a in dis.alarms] == [(mid, 1)]
            assert not (await c.maintenance.alarm_list()).alarms
            await c.put("x", "y")

    asyncio.run(main())


def test_snapshot_to_file(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def main() -> int:
        async with Client([server.endpoint], timeout=10) as c:
            for i in range(20):
                await c.put(f"s/{i}", "v" * 100)
            return await c.maintenance.snapshot(tmp_path / "snap.db")

    n = asyncio.run(main())
    path = tmp_path / "snap.db"
    assert path.stat().st_size == n > 0
    assert not (tmp_path / "snap.db.part").exists()
    out = subprocess.run(
        [etcd_tool("etcdutl"), "snapshot", "status", str(path), "-w", "json"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert json.loads(out)["totalKey"] >= 20


def test_downgrade_api(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=10) as c:
            with pytest.raises(errors.InvalidArgumentError) as ei:
                await c.maintenance.downgrade("validate", "not-a-version")
            assert ei.value.message == "etcdserver: wrong downgrade target version format"
            with pytest.raises(errors.FailedPreconditionError) as ei2:
                await c.maintenance.downgrade("cancel", "3.4.0")
            assert ei2.value.message == "etcdserver: no inflight downgrade job"

    asyncio.run(main())
