"""KV API against a real server: every RangeRequest option, put/delete flags, txn, compaction."""

from __future__ import annotations

import asyncio

import pytest
from kvetch.client import Client, Compare, Op, errors


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def keys(resp) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [kv.key for kv in resp.kvs]


def test_range_options(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            revs = {}
            for k, v in [("a", "3"), ("b/1", "1"), ("b/2", "22"), ("b/3", "0"), ("c", "x")]:
                revs[k] = (await c.put(k, v)).header.revision
            await c.put("b/1", "11")  # b/1: version 2, newest mod revision
            assert keys(await c.get("b/", prefix=True)) == [b"b/1", b"b/2", b"b/3"]
            assert keys(await c.get("b/2", from_key=True)) == [b"b/2", b"b/3", b"c"]
            assert keys(await c.get("a", "b/3")) == [b"a", b"b/1", b"b/2"]
            r = await c.get("", prefix=True, limit=2)
            assert keys(r) == [b"a", b"b/1"] and r.more and r.count == 5
            assert keys(await c.get("b/", prefix=True, sort_order="descend")) == [b"b/3", b"b/2", b"b/1"]
            assert keys(await c.get("b/", prefix=True, sort_target="value", sort_order="ascend")) == [
                b"b/3", b"b/1", b"b/2",
            ]
            assert keys(await c.get("b/", prefix=True, sort_target="version", sort_order="descend"))[0] == b"b/1"
            assert keys(await c.get("b/", prefix=True, sort_target="mod", sort_order="descend"))[0] == b"b/1"
            assert keys(await c.get("", prefix=True, sort_target="create", sort_order="descend"))[0] == b"c"
            old = await c.get("b/1", revision=revs["b/1"])
            assert old.kvs[0].value == b"1"
            ser = await c.get("a", serializable=True)
            assert ser.kvs[0].value == b"3"
            ko = await c.get("b/", prefix=True, keys_only=True)
            assert keys(ko) == [b"b/1", b"b/2", b"b/3"] and all(kv.value == b"" for kv in ko.kvs)
            co = await c.get("b/", prefix=True, count_only=True)
            assert co.count == 3 and not co.kvs
            assert keys(await c.get("", prefix=True, min_mod_revision=revs["c"])) == [b"b/1", b"c"]
            assert keys(await c.get("", prefix=True, max_mod_revision=revs["b/2"])) == [b"a", b"b/2"]
            assert keys(await c.get("", prefix=True, min_create_revision=revs["b/3"])) == [b"b/3", b"c"]
            assert keys(await c.get("", prefix=True, max_create_revision=revs["b/1"])) == [b"a", b"b/1"]

    run(main())


def test_put_delete_flags(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            lease = (await c.grant(60)).ID
            await c.put("k", "v1", lease=lease)
            r = await c.put("k", "v2", prev_kv=True)
            assert r.prev_kv.value == b"v1" and r.prev_kv.lease == lease
            got = (await c.get("k")).kvs[0]
            assert got.value == b"v2" and got.lease == 0
            await c.put("k", "v3", lease=lease)
            await c.put("k", ignore_value=True, ignore_lease=True)
            got = (await c.get("k")).kvs[0]
            assert got.value == b"v3" and got.lease == lease and got.version == 4
            with pytest.raises(errors.KeyNotFoundError) as ei:
                await c.put("missing", ignore_value=True)
            assert ei.value.message == "etcdserver: key not found"
            for k in ("p/1", "p/2", "q"):
                await c.put(k, k)
            d = await c.delete("p/", prefix=True, prev_kv=True)
            assert d.deleted == 2 and [kv.key for kv in d.prev_kvs] == [b"p/1", b"p/2"]
            d = await c.delete("q")
            assert d.deleted == 1 and not d.prev_kvs
            d = await c.delete("a", from_key=True)
            assert d.deleted == 1  # only "k" is left

    run(main())


def test_txn_builder(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            await c.put("x", "1")
            t = await (
                c.txn()
                .if_(Compare.value("x", "=", "1"), Compare.version("x", ">", 0), Compare.create("y", "=", 0))
                .then(Op.put("y", "2"), Op.get("x"), Op.delete("nothing"))
                .else_(Op.put("z", "fail"))
                .commit()
            )
            assert t.succeeded
            assert t.responses[1].response_range.kvs[0].value == b"1"
            t = await c.txn().if_(Compare.mod("x", "<", 1)).then(Op.put("z", "ok")).else_(Op.get("y")).commit()
            assert not t.succeeded and t.responses[0].response_range.kvs[0].value == b"2"
            nested = Op.txn([Compare.value("y", "!=", "3")], [Op.put("n", "1")], [])
            t = await c.txn().then(nested).commit()
            assert t.responses[0].response_txn.succeeded
            assert (await c.get("n")).count == 1

    run(main())


def test_compaction_and_revision_errors(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            first = (await c.put("h", "1")).header.revision
            last = first
            for i in range(3):
                last = (await c.put("h", str(i))).header.revision
            await c.compact(last - 1, physical=True)
            with pytest.raises(errors.CompactedError) as ei:
                await c.get("h", revision=first)
            assert ei.value.message == "etcdserver: mvcc: required revision has been compacted"
            with pytest.raises(errors.FutureRevisionError):
                await c.get("h", revision=last + 100)
            with pytest.raises(errors.CompactedError):
                await c.compact(first)
            assert (await c.get("h", revision=last - 1)).kvs[0].value == b"1"

    run(main())


def test_unreachable_endpoint_times_out() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        async with Client([f"127.0.0.1:{port}"], timeout=1, dial_timeout=0.3) as c:
            with pytest.raises(errors.DeadlineExceededError):
                await c.get("k")

    run(main())
