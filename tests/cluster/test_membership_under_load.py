"""Membership changes while writes run: add a learner, let it catch up, promote it, update its
peer URLs, remove an old member -- no acknowledged write is lost and all members agree."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest
from e2e_support.cluster import Member, start_cluster
from e2e_support.etcdctl import run_etcdctl
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc


@pytest.mark.requires_flavour("kvetch")
def test_membership_changes_under_load(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path)
    acked: list[bytes] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        ch = grpc.insecure_channel(members[1 + n % 2].endpoint)  # not m0, which gets removed
        kv = rpc_pb2_grpc.KVStub(ch)
        i = 0
        while not stop.is_set():
            key = b"load/%d/%06d" % (n, i)
            try:
                kv.Put(rpc_pb2.PutRequest(key=key, value=b"v"), timeout=3)
                acked.append(key)
            except grpc.RpcError:
                pass
            i += 1
        ch.close()

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(4)]
    joiner = Member(flavour, tmp_path / "m3", "m3")
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) > 30, timeout=30, what="load")
        wait_until(lambda: run_etcdctl("3.5", "member", "add", "m3", "--learner", f"--peer-urls={joiner.peer_url}",
                                       server=members[1], check=True), timeout=30, what="member add")
        joiner.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in [*members, joiner])
        joiner.cluster_state = "existing"
        joiner.launch()
        listed = run_etcdctl("3.5", "member", "list", "-w", "json", server=members[1], check=True).json()
        lid = next(x["ID"] for x in listed["members"] if x.get("isLearner"))
        wait_until(lambda: run_etcdctl("3.5", "member", "promote", f"{lid:x}", server=members[1], check=True),
                   timeout=60, what="promotion of the caught-up learner")
        updated = run_etcdctl("3.5", "member", "update", f"{lid:x}", f"--peer-urls={joiner.peer_url}",
                              server=members[2], check=True)
        assert "updated in cluster" in updated.stdout
        old_id = members[0].status().header.member_id
        wait_until(lambda: run_etcdctl("3.5", "member", "remove", f"{old_id:x}", server=members[2], check=True),
                   timeout=30, what="member remove")
        before = len(acked)
        wait_until(lambda: len(acked) > before + 30, timeout=30, what="load after the changes")
        stop.set()
        for t in threads:
            t.join(10)
        remaining = [members[1], members[2], joiner]
        snapshot = list(acked)
        for m in remaining:
            kv = rpc_pb2_grpc.KVStub(m.channel())
            got = kv.Range(rpc_pb2.RangeRequest(key=b"load/", range_end=b"load0", keys_only=True), timeout=10)
            assert set(snapshot) <= {x.key for x in got.kvs}, m.name
        rev = rpc_pb2_grpc.KVStub(members[1].channel()).Range(
            rpc_pb2.RangeRequest(key=b"load/"), timeout=5).header.revision
        hashes = {rpc_pb2_grpc.MaintenanceStub(m.channel()).HashKV(rpc_pb2.HashKVRequest(revision=rev),
                                                                  timeout=10).hash for m in remaining}
        assert len(hashes) == 1
        names = sorted(x["name"] for x in run_etcdctl("3.5", "member", "list", "-w", "json", server=members[1],
                                                        check=True).json()["members"])
        assert names == ["m1", "m2", "m3"]
    finally:
        stop.set()
        for m in [*members, joiner]:
            if m.is_running():
                m.stop()
