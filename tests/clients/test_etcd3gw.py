"""The PyPI ``etcd3gw`` client, which speaks to the JSON gateway (/v3/...)."""

from __future__ import annotations

import etcd3gw  # type: ignore[import-untyped]


def client(server):  # type: ignore[no-untyped-def]
    return etcd3gw.client(host="127.0.0.1", port=server.client_port, timeout=10)


def test_put_get_delete(server) -> None:
    c = client(server)
    assert c.put("gw/a", "1") is True
    assert c.put("gw/b", "2") is True
    assert c.get("gw/a") == [b"1"]
    assert c.get("gw/none") == []
    value, meta = c.get("gw/a", metadata=True)[0]
    assert value == b"1"
    # the gateway renders int64 fields as JSON strings
    assert meta == {"key": b"gw/a", "create_revision": "2", "mod_revision": "2", "version": "1"}
    assert [v for v, _ in c.get_prefix("gw/")] == [b"1", b"2"]
    assert c.delete("gw/a") is True
    assert c.delete("gw/a") is False
    assert c.get("gw/a") == []
    assert c.replace("gw/b", "2", "3") is True
    assert c.replace("gw/b", "2", "4") is False
    assert c.get("gw/b") == [b"3"]


def test_lease(server) -> None:
    c = client(server)
    lease = c.lease(30)
    assert lease.id > 0
    assert 25 <= lease.ttl() <= 30
    assert lease.refresh() == 30
    assert c.put("gw/l", "v", lease=lease) is True
    assert lease.keys() == [b"gw/l"]
    assert lease.revoke() is True
    assert c.get("gw/l") == []
    assert lease.ttl() == -1  # unknown lease: TTL -1 in LeaseTimeToLive


def test_watch(server) -> None:
    c = client(server)
    events, cancel = c.watch("gw/w")
    try:
        c.put("gw/w", "x")
        event = next(iter(events))
        # PUT is the enum's zero value, so the gateway omits "type"
        assert "type" not in event
        assert event["kv"]["key"] == b"gw/w"
        assert event["kv"]["value"] == b"x"
    finally:
        cancel()


def test_watch_prefix_sees_delete(server) -> None:
    c = client(server)
    seen: list[dict] = []
    c.put("gw/p1", "a")
    events, cancel = c.watch_prefix("gw/p")
    try:
        it = iter(events)
        c.delete("gw/p1")
        seen.append(next(it))
    finally:
        cancel()
    assert seen[0]["type"] == "DELETE"
    assert seen[0]["kv"]["key"] == b"gw/p1"


def test_status_and_members(server) -> None:
    c = client(server)
    st = c.status()
    assert st["leader"] == st["header"]["member_id"]
    assert int(st["dbSize"]) > 0
    members = c.members()
    assert [(m["name"], m["clientURLs"]) for m in members] == [(server.name, [server.client_url])]
