"""3- and 5-member clusters as real processes: writes through every member, reads from every
member, real etcdctl member/endpoint commands, leader failure under load, learners."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from e2e_support.cluster import Member, leader_of, start_cluster
from e2e_support.etcdctl import run_etcdctl
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc


def endpoints(members: list[Member]) -> str:
    return ",".join(m.endpoint for m in members if m.is_running())


class _All:
    """An object run_etcdctl accepts as `server`: several endpoints at once."""

    def __init__(self, members: list[Member]) -> None:
        self.endpoint = endpoints(members)


def count(m: Member, prefix: str, serializable: bool = False) -> int:
    """Keys under ``prefix`` on one member (gRPC Range with count_only)."""
    key = prefix.encode()
    end = key[:-1] + bytes([key[-1] + 1])
    req = rpc_pb2.RangeRequest(key=key, range_end=end, count_only=True, serializable=serializable)
    return int(rpc_pb2_grpc.KVStub(m.channel()).Range(req, timeout=5).count)


def stop_all(members: list[Member]) -> None:
    for m in members:
        if m.is_running():
            m.stop()


@pytest.mark.parametrize("size", [3, 5])
def test_write_through_every_member_read_from_every_member(tmp_path: Path, flavour: str, size: int) -> None:
    members = start_cluster(flavour, size, tmp_path)
    try:
        for m in members:
            run_etcdctl("3.5", "put", f"via-{m.name}", m.name, server=m, check=True)
        for m in members:
            out = run_etcdctl("3.5", "get", "via-", "--prefix", "--keys-only", server=m, check=True)
            assert [k for k in out.lines if k] == sorted(f"via-{x.name}" for x in members)
        # each member publishes its name and client URLs through the log shortly after start
        def published() -> dict | None:
            out = run_etcdctl("3.5", "member", "list", "-w", "json", server=members[0], check=True).json()
            return out if all(x.get("clientURLs") for x in out["members"]) else None

        listed = wait_until(published, timeout=30, what="every member's client URLs in the member list")
        assert sorted(x["name"] for x in listed["members"]) == sorted(m.name for m in members)
        status = run_etcdctl("3.5", "endpoint", "status", "--cluster", "-w", "json", server=members[0],
                             check=True).json()
        assert len(status) == size
        assert len({s["Status"]["leader"] for s in status}) == 1
        hashes = run_etcdctl("3.5", "endpoint", "hashkv", "--cluster", "-w", "json", server=members[0],
                             check=True).json()
        assert len({h["HashKV"]["hash"] for h in hashes}) == 1
    finally:
        stop_all(members)


def test_move_leader_and_leader_kill_under_load(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path)
    try:
        leader = leader_of(members)
        target = next(m for m in members if m is not leader)
        target_id = target.status().header.member_id
        out = run_etcdctl("3.5", "move-leader", f"{target_id:x}", server=leader, check=True)
        assert "Leadership transferred" in out.stdout
        assert leader_of(members) is target

        acked: list[str] = []
        stop = threading.Event()

        def writer(i: int) -> None:
            ch = grpc.insecure_channel(members[i % 3].endpoint)
            kv = rpc_pb2_grpc.KVStub(ch)
            n = 0
            while not stop.is_set():
                key = f"w{i}-{n}"
                try:
                    kv.Put(rpc_pb2.PutRequest(key=key.encode(), value=b"v"), timeout=3)
                    acked.append(key)
                except grpc.RpcError:
                    pass
                n += 1
            ch.close()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) > 50, timeout=30, what="writes before the kill")
        target.kill()
        killed_at = time.monotonic()
        survivors = [m for m in members if m is not target]
        new_leader = leader_of(survivors, timeout=30)
        assert new_leader is not target
        elected_after = time.monotonic() - killed_at
        before = len(acked)
        wait_until(lambda: len(acked) > before + 50, timeout=30, what="writes after the new election")
        stop.set()
        for t in threads:
            t.join(10)
        target.start()
        # every acknowledged write is on every member, and they agree on HashKV
        for m in members:
            wait_until(lambda m=m: count(m, "w", serializable=True) >= len(set(acked)),
                       timeout=30, what=f"{m.name} to catch up")
        for m in members:
            got = run_etcdctl("3.5", "get", "w", "--prefix", "--keys-only", server=m, check=True)
            keys = {k for k in got.lines if k}
            assert set(acked) <= keys
        rev = run_etcdctl("3.5", "get", "w", "-w", "json", server=new_leader, check=True).json()["header"]["revision"]
        hashes = {run_etcdctl("3.5", "endpoint", "hashkv", f"--rev={rev}", "-w", "json", server=m,
                              check=True).json()[0]["HashKV"]["hash"] for m in members}
        assert len(hashes) == 1
        assert elected_after < 15
    finally:
        stop_all(members)


def test_learner_joins_catches_up_is_promoted_and_old_member_removed(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path)
    try:
        for i in range(30):
            run_etcdctl("3.5", "put", f"pre{i:02d}", "v", server=_All(members), check=True)
        joiner = Member(flavour, tmp_path / "m3", "m3")
        # etcd refuses reconfiguration until its members have been healthy for a while
        # ("etcdserver: unhealthy cluster"); retry like an operator would.
        added = wait_until(lambda: run_etcdctl("3.5", "member", "add", "m3", "--learner",
                                               f"--peer-urls={joiner.peer_url}", server=members[0], check=True),
                           timeout=30, what="member add to be accepted")
        assert "added to cluster" in added.stdout
        joiner.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in [*members, joiner])
        joiner.cluster_state = "existing"
        joiner.launch()
        wait_until(lambda: count(joiner, "pre", serializable=True) == 30, timeout=60,
                   what="learner to catch up")
        # a learner refuses writes and linearizable reads with etcd's error
        refused = run_etcdctl("3.5", "put", "x", "y", server=joiner)
        assert refused.error == "etcdserver: rpc not supported for learner"
        listed = run_etcdctl("3.5", "member", "list", "-w", "json", server=members[0], check=True).json()
        learner = next(x for x in listed["members"] if x.get("isLearner"))
        promoted = wait_until(lambda: run_etcdctl("3.5", "member", "promote", f"{learner['ID']:x}",
                                                  server=members[1], check=True),
                              timeout=30, what="learner promotion")
        assert "promoted" in promoted.stdout
        run_etcdctl("3.5", "put", "x", "y", server=joiner, check=True)
        old = members[0]
        old_id = old.status().header.member_id
        wait_until(lambda: run_etcdctl("3.5", "member", "remove", f"{old_id:x}", server=members[1], check=True),
                   timeout=30, what="member remove")
        after = run_etcdctl("3.5", "member", "list", "-w", "json", server=members[1], check=True).json()
        assert old_id not in [x["ID"] for x in after["members"]]
        assert len(after["members"]) == 3
        assert run_etcdctl("3.5", "get", "x", server=joiner, check=True).stdout == "x\ny\n"
        members.append(joiner)
    finally:
        stop_all(members)
