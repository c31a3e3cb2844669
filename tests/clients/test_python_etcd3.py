"""The PyPI ``etcd3`` client (0.12.0) against the server, via etcd3_driver.py.

The driver runs in a subprocess with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION
=python: etcd3 0.12.0's generated code does not load under the upb protobuf
backend of protobuf >= 4 (here 7.x), and the pure-Python backend does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DRIVER = Path(__file__).with_name("etcd3_driver.py")


def run_driver(server: Any, scenario: str) -> Any:
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    proc = subprocess.run([sys.executable, str(DRIVER), server.endpoint, scenario],
                          capture_output=True, text=True, env=env, timeout=90, check=False)
    assert proc.returncode == 0, f"driver {scenario} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_kv(server) -> None:
    out = run_driver(server, "kv")
    assert out["get"] == "3"
    assert out["meta"] == {"key": "py/a", "create_revision": 2, "mod_revision": 4, "version": 2, "lease_id": 0}
    assert out["missing"] == [None, None]
    assert out["prefix"] == [["py/a", "3"], ["py/b", "2"]]
    assert out["range"] == [["py/a", "3"]]
    assert out["sorted_desc"] == ["py/b", "py/a"]
    assert out["all_keys"] == ["py/a", "py/b"]
    assert out["deleted"] is True
    assert out["deleted_again"] is False
    assert out["prev_kv"] == [1, [["py/a", "3"]]]
    assert out["prefix_deleted"] == 2
    assert out["revision"] == 9


def test_txn(server) -> None:
    out = run_driver(server, "txn")
    assert out["ok"] is True
    assert out["responses"] == ["ResponseOp", [["1", "t/a"]]]
    assert out["b"] == "yes"
    assert out["ok2"] is False
    assert out["c"] == "failed"
    assert out["a_exists"] is True
    assert out["dup_error"] == "_InactiveRpcError: etcdserver: duplicate key given in txn request"


def test_watch(server) -> None:
    out = run_driver(server, "watch")
    assert out["events"] == [["PutEvent", "w/1", "a"], ["PutEvent", "w/2", "b"], ["DeleteEvent", "w/1", ""]]
    assert out["replay"] == ["PutEvent", "w/2", "b"]
    assert out["compacted"] == "RevisionCompactedError"


def test_lease(server) -> None:
    out = run_driver(server, "lease")
    assert out["id"] == 4242
    assert out["ttl_ok"] is True
    assert out["granted"] == 60
    assert out["keys"] == ["l/k"]
    assert out["refreshed"] == [60]
    assert out["meta_lease"] == 4242
    assert out["after"] is None
    assert out["missing_error"] == "_InactiveRpcError: etcdserver: requested lease not found"


def test_lock(server) -> None:
    out = run_driver(server, "lock")
    assert out == {"acquired": True, "value_is_uuid": True, "lease_attached": True,
                   "second_txn_while_held": False, "held": True, "gone_after_release": True,
                   "second_after": True}


def test_status_and_members(server) -> None:
    out = run_driver(server, "status")
    assert out["leader"] == server.name
    assert out["db_size_positive"] is True
    assert out["raft_term"] >= 1
    if server.flavour == "etcd":
        assert out["version"] == "3.5.1"
    assert [(m["name"], m["peer_urls"], m["client_urls"]) for m in out["members"]] == [
        (server.name, [server.peer_url], [server.client_url])]


def test_errors(server) -> None:
    out = run_driver(server, "errors")
    assert out == {
        "put_empty_key": ["INVALID_ARGUMENT", "etcdserver: key is not provided"],
        "get_empty_key": ["INVALID_ARGUMENT", "etcdserver: key is not provided"],
        # keep-alive of an unknown lease is not an error: the reply carries TTL 0
        "refresh_missing_lease": ["ok", [0]],
        "put_missing_lease": ["NOT_FOUND", "etcdserver: requested lease not found"],
        "compact_future": ["OUT_OF_RANGE", "etcdserver: mvcc: required revision is a future revision"],
    }
