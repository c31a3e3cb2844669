"""The npm ``etcd3`` client (tests/js, run by node) against the server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "js"


def test_node_etcd3_scenario(server) -> None:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (JS / "node_modules" / "etcd3").is_dir(), "run: npm ci --prefix tests/js"
    proc = subprocess.run([node, str(JS / "scenario.js"), server.endpoint],
                          capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["get"] == "1"
    assert out["missing"] is None
    assert out["prefix"] == {"js/a": "1", "js/b": "2", "js/c": "3"}
    assert out["count"] == 3
    assert out["keysDesc"] == ["js/c", "js/b"]
    assert out["deleted"] == "1"  # int64 arrives as a string
    assert out["txnSucceeded"] is True
    assert out["txnValue"] == "yes"
    assert out["watch"] == "seen"
    assert out["leaseTtl"] == 30
    assert out["leasedBefore"] == "x"
    assert out["leasedAfter"] is None
    assert out["lockKeys"] == 1
    assert out["lockKeysAfter"] == 0
    assert out["members"] == [server.name]
    assert out["futureRev"] == (
        "GRPCOutOfRangeError: 11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision")
    if server.flavour == "etcd":
        assert out["version"] == "3.5.1"
