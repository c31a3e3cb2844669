"""The JSON gateway through real curl: the README's seed command, then range and errors."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any


def curl(server: Any, path: str, body: str | None = None, method: str = "POST") -> tuple[int, Any]:
    argv = ["curl", "-s", "-S", "-L", "-X", method, "-w", "\n%{http_code}", f"{server.client_url}{path}"]
    if body is not None:
        argv += ["-d", body]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    text, _, code = proc.stdout.rpartition("\n")
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError:
        payload = text
    return int(code), payload


def test_seed_put_then_range(server) -> None:
    # the seed command, as users type it
    code, put = curl(server, "/v3/kv/put", '{"key": "Zm9v", "value": "YmFy"}')
    assert code == 200
    assert put["header"]["revision"] == "2"  # int64 as a JSON string
    assert set(put["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
    code, rng = curl(server, "/v3/kv/range", '{"key": "Zm9v"}')
    assert code == 200
    assert rng["kvs"] == [{"key": "Zm9v", "create_revision": "2", "mod_revision": "2", "version": "1",
                           "value": base64.b64encode(b"bar").decode()}]
    assert rng["count"] == "1"
    # empty results omit kvs and count
    code, empty = curl(server, "/v3/kv/range", '{"key": "bm9uZQ=="}')
    assert code == 200
    assert "kvs" not in empty and "count" not in empty


def test_prefix_range_and_delete(server) -> None:
    for key in (b"p/1", b"p/2", b"q"):
        k = base64.b64encode(key).decode()
        assert curl(server, "/v3/kv/put", json.dumps({"key": k, "value": k}))[0] == 200
    body = {"key": base64.b64encode(b"p/").decode(), "range_end": base64.b64encode(b"p0").decode(),
            "keys_only": True}
    code, rng = curl(server, "/v3/kv/range", json.dumps(body))
    assert code == 200
    assert [base64.b64decode(kv["key"]) for kv in rng["kvs"]] == [b"p/1", b"p/2"]
    assert all("value" not in kv for kv in rng["kvs"])
    body["prev_kv"] = True
    del body["keys_only"]
    code, dele = curl(server, "/v3/kv/deleterange", json.dumps(body))
    assert code == 200
    assert dele["deleted"] == "2"
    assert [base64.b64decode(kv["value"]) for kv in dele["prev_kvs"]] == [b"p/1", b"p/2"]


def test_txn_and_lease(server) -> None:
    code, lease = curl(server, "/v3/lease/grant", '{"TTL": 30, "ID": 77}')
    assert code == 200
    assert (lease["ID"], lease["TTL"]) == ("77", "30")
    txn = {
        "compare": [{"key": "Zm9v", "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
        "success": [{"request_put": {"key": "Zm9v", "value": "YmFy", "lease": 77}}],
        "failure": [],
    }
    code, out = curl(server, "/v3/kv/txn", json.dumps(txn))
    assert code == 200
    assert out["succeeded"] is True
    assert out["responses"] == [{"response_put": {"header": {"revision": "2"}}}]
    code, ttl = curl(server, "/v3/lease/timetolive", '{"ID": 77, "keys": true}')
    assert code == 200
    assert ttl["keys"] == ["Zm9v"]
    assert ttl["grantedTTL"] == "30"


def test_errors(server) -> None:
    code, err = curl(server, "/v3/kv/range", '{"key": "Zm9v", "revision": 100000}')
    assert code == 400
    assert err == {"error": "etcdserver: mvcc: required revision is a future revision", "code": 11,
                   "message": "etcdserver: mvcc: required revision is a future revision"}
    code, err = curl(server, "/v3/kv/put", '{"key": "", "value": "YmFy"}')
    assert code == 400
    assert (err["code"], err["message"]) == (3, "etcdserver: key is not provided")
    code, err = curl(server, "/v3/kv/range", "not json")
    assert code == 400
    assert err["code"] == 3  # InvalidArgument; the text is the JSON decoder's own
    code, err = curl(server, "/v3/lease/revoke", '{"ID": 12345}')
    assert code == 404
    assert (err["code"], err["message"]) == (5, "etcdserver: requested lease not found")
    code, _ = curl(server, "/v3/kv/nope", "{}")
    assert code == 404
    code, _ = curl(server, "/v3/kv/range", method="GET")
    assert code == 405


def test_health_and_version(server) -> None:
    code, health = curl(server, "/health", method="GET")
    assert code == 200
    assert health["health"] == "true"
    code, version = curl(server, "/version", method="GET")
    assert code == 200
    if server.flavour == "etcd":
        assert version == {"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}
    else:
        # kvetch also reports its storage version, under etcd 3.6's "storage" key
        assert set(version) == {"etcdserver", "etcdcluster", "storage"}
        assert version["etcdcluster"] == version["storage"] == ".".join(version["etcdserver"].split(".")[:2]) + ".0"


def test_watch_stream(server) -> None:
    curl(server, "/v3/kv/put", '{"key": "Zm9v", "value": "YmFy"}')
    curl(server, "/v3/kv/deleterange", '{"key": "Zm9v"}')
    # a watch from revision 2 replays both events; --max-time ends the stream
    proc = subprocess.run(
        ["curl", "-s", "-N", "--max-time", "2", "-X", "POST", f"{server.client_url}/v3/watch",
         "-d", '{"create_request": {"key": "Zm9v", "start_revision": 2}}'],
        capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 28, proc.stderr  # 28 = timed out, as expected for a stream
    messages = [json.loads(line)["result"] for line in proc.stdout.splitlines() if line.strip()]
    assert messages[0]["created"] is True
    events = [ev for msg in messages[1:] for ev in msg.get("events", [])]
    assert events == [
        {"kv": {"key": "Zm9v", "create_revision": "2", "mod_revision": "2", "version": "1", "value": "YmFy"}},
        {"type": "DELETE", "kv": {"key": "Zm9v", "mod_revision": "3"}},
    ]
