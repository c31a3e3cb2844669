"""kvetchutl on real snapshots: etcdctl 3.5 saves a snapshot of a running kvetch, kvetchutl
inspects it, restores it into a new data dir, and a kvetch started there serves the data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from e2e_support.etcdctl import run_etcdctl


def kvetchutl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kvetchutl", *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.requires_flavour("kvetch")
def test_snapshot_status_restore_and_serve(server_factory, tmp_path: Path, flavour: str) -> None:
    src = server_factory(flavour, name="src")
    for i in range(5):
        run_etcdctl("3.5", "put", f"k{i}", f"v{i}", server=src, check=True)
    run_etcdctl("3.5", "del", "k0", server=src, check=True)
    snap = tmp_path / "snap.db"
    run_etcdctl("3.5", "snapshot", "save", str(snap), server=src, check=True)
    hashkv = run_etcdctl("3.5", "endpoint", "hashkv", "-w", "json", server=src).json()[0]["HashKV"]

    status = kvetchutl("snapshot", "status", str(snap), "-w", "json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["revision"] == 7  # 1 + five puts + one delete
    assert info["totalKey"] > 5

    # a corrupted trailer is refused
    bad = tmp_path / "bad.db"
    data = bytearray(snap.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    refused = kvetchutl("snapshot", "status", str(bad))
    assert refused.returncode == 1 and "sha256" in refused.stderr

    restored_dir = tmp_path / "restored"
    res = kvetchutl("snapshot", "restore", str(snap), "--data-dir", str(restored_dir))
    assert res.returncode == 0, res.stderr
    offline = json.loads(kvetchutl("hashkv", "--data-dir", str(restored_dir)).stdout)
    assert offline["hash"] == hashkv["hash"]

    dst = server_factory(flavour, name="dst", start=False)
    dst.data_dir = restored_dir
    dst.start()
    got = run_etcdctl("3.5", "get", "k", "--prefix", server=dst)
    assert got.stdout.split() == ["k1", "v1", "k2", "v2", "k3", "v3", "k4", "v4"]
    run_etcdctl("3.5", "put", "after", "restore", server=dst, check=True)
    rev = run_etcdctl("3.5", "get", "after", "-w", "json", server=dst).json()["header"]["revision"]
    assert rev == 8
