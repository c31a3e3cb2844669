"""The blocking facade mirrors the asyncio client."""

from __future__ import annotations

from kvetch.client import Compare, Op, SyncClient, errors


def test_sync_client(server) -> None:  # type: ignore[no-untyped-def]
    with SyncClient([server.endpoint], timeout=5) as c:
        c.put("a", "1")
        assert c.get("a").kvs[0].value == b"1"
        t = c.txn().if_(Compare.value("a", "=", "1")).then(Op.put("b", "2")).commit()
        assert t.succeeded
        w = c.watch("b")
        c.put("b", "3")
        for resp in w:
            if resp.events:
                assert resp.events[0].kv.value == b"3"
                break
        w.cancel()
        g = c.lease.grant(10)
        assert c.lease.time_to_live(g.ID).grantedTTL == 10
        try:
            c.lease.revoke(12345)
        except errors.LeaseNotFoundError as e:
            assert e.message == "etcdserver: requested lease not found"
        else:
            raise AssertionError("expected LeaseNotFoundError")
