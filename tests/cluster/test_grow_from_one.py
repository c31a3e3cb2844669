"""A cluster started with ONE member grows: member add (learner, then a voter), the new members
start with --initial-cluster-state existing, catch up from a snapshot of the backend, and the
cluster serves writes from every member (etcd allows a second voter to join a one-member cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support.cluster import Member
from e2e_support.etcdctl import run_etcdctl
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc


def count(m, prefix: bytes) -> int:  # type: ignore[no-untyped-def]
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    return int(rpc_pb2_grpc.KVStub(m.channel()).Range(
        rpc_pb2.RangeRequest(key=prefix, range_end=end, count_only=True, serializable=True), timeout=5).count)


@pytest.mark.requires_flavour("kvetch")
def test_single_member_grows_to_three(server_factory, tmp_path: Path, flavour: str) -> None:
    first = server_factory(flavour, name="m0")
    for i in range(50):
        run_etcdctl("3.5", "put", f"pre/{i:02d}", "v", server=first, check=True)
    members = [first]
    for n, learner in ((1, True), (2, False)):
        joiner = Member(flavour, tmp_path / f"m{n}", f"m{n}")
        args = ["member", "add", f"m{n}", f"--peer-urls={joiner.peer_url}"] + (["--learner"] if learner else [])
        added = wait_until(lambda args=args: run_etcdctl("3.5", *args, server=first, check=True), timeout=30,
                           what="member add")
        assert "added to cluster" in added.stdout
        initial = next(line.split("=", 1)[1].strip('"') for line in added.stdout.splitlines()
                       if line.startswith("ETCD_INITIAL_CLUSTER="))
        joiner.initial_cluster = initial
        joiner.cluster_state = "existing"
        joiner.launch()
        wait_until(lambda j=joiner: count(j, b"pre/") == 50, timeout=60, what=f"m{n} to catch up")
        if learner:
            listed = run_etcdctl("3.5", "member", "list", "-w", "json", server=first, check=True).json()
            lid = next(x["ID"] for x in listed["members"] if x.get("isLearner"))
            wait_until(lambda lid=lid: run_etcdctl("3.5", "member", "promote", f"{lid:x}", server=first,
                                                   check=True), timeout=30, what="promotion")
        members.append(joiner)
    try:
        assert "lone member now replicates through Raft" in first.log_text()
        for m in members:
            run_etcdctl("3.5", "put", f"via/{m.name}", "x", server=m, check=True)
        for m in members:
            wait_until(lambda m=m: count(m, b"via/") == 3, timeout=30, what="replication")
        listed = run_etcdctl("3.5", "member", "list", "-w", "json", server=members[2], check=True).json()
        assert sorted(x["name"] for x in listed["members"]) == ["m0", "m1", "m2"]
        assert not any(x.get("isLearner") for x in listed["members"])
        rev = rpc_pb2_grpc.KVStub(first.channel()).Range(rpc_pb2.RangeRequest(key=b"via/"), timeout=5).header.revision
        hashes = {rpc_pb2_grpc.MaintenanceStub(m.channel()).HashKV(rpc_pb2.HashKVRequest(revision=rev),
                                                                  timeout=10).hash for m in members}
        assert len(hashes) == 1
        # the first member restarts in replicated mode and rejoins
        first.stop()
        first.start()
        run_etcdctl("3.5", "put", "after-restart", "1", server=first, check=True)
    finally:
        for m in members[1:]:
            if m.is_running():
                m.stop()
