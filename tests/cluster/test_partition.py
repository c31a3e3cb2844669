"""A network partition (kvetch's test-only peer-transport failpoint): the minority side cannot
write, serve linearizable reads or list members; the majority keeps serving; after healing all
members converge. The whole client history is checked for linearizability (WGL search)."""

from __future__ import annotations

import itertools
import random
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from e2e_support.cluster import Member, leader_of, start_cluster
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kvetch_compat.history import Op
from kvetch_compat.linearizability import check

KEYS = [f"lin/{i}" for i in range(4)]


class Recorder:
    """Clients doing puts and linearizable gets on a few keys, recording every operation."""

    def __init__(self, members: list[Member], seed: int) -> None:
        self.members = members
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.stop = threading.Event()
        self.rng = random.Random(seed)
        self.threads: list[threading.Thread] = []

    def _client(self, n: int) -> None:
        member = self.members[n % len(self.members)]
        channel = grpc.insecure_channel(member.endpoint)
        kv = rpc_pb2_grpc.KVStub(channel)
        rng = random.Random(n)
        i = 0
        while not self.stop.is_set():
            key = rng.choice(KEYS)
            op = Op(id=next(self.ids), client=f"c{n}", kind="put" if rng.random() < 0.5 else "get", key=key,
                    endpoint=member.name)
            if op.kind == "put":
                op.value = f"c{n}-{i}"
            op.call = time.monotonic()
            try:
                if op.kind == "put":
                    resp = kv.Put(rpc_pb2.PutRequest(key=key.encode(), value=op.value.encode()), timeout=2)
                    op.revision = resp.header.revision
                else:
                    r = kv.Range(rpc_pb2.RangeRequest(key=key.encode()), timeout=2)
                    op.revision = r.header.revision
                    op.out_value = r.kvs[0].value.decode() if r.kvs else None
                    op.out_mod_rev = r.kvs[0].mod_revision if r.kvs else 0
                op.ret = time.monotonic()
                op.outcome = "ok"
            except grpc.RpcError as exc:
                op.error = exc.details() or ""
                if op.kind == "get":
                    continue  # a failed read changes nothing: leave it out
                op.outcome = "unknown"  # a failed write may still have been applied
            with self.lock:
                self.ops.append(op)
            i += 1
        channel.close()

    def start(self, clients: int = 6) -> None:
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


@pytest.mark.requires_flavour("kvetch")
def test_partition_minority_stops_majority_serves_then_converges(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path)
    rec = Recorder(members, seed=7)
    try:
        rec.start()
        wait_until(lambda: len(rec.ops) > 100, timeout=30, what="traffic before the partition")
        isolated = leader_of(members)
        majority = [m for m in members if m is not isolated]
        isolated.cut_off(majority)
        for m in majority:
            m.cut_off([isolated])

        new_leader = leader_of(majority, timeout=30)
        assert new_leader is not isolated
        kv_min = rpc_pb2_grpc.KVStub(isolated.channel())
        with pytest.raises(grpc.RpcError):
            kv_min.Put(rpc_pb2.PutRequest(key=b"minority", value=b"x"), timeout=3)
        with pytest.raises(grpc.RpcError):
            kv_min.Range(rpc_pb2.RangeRequest(key=b"lin/0"), timeout=3)
        with pytest.raises(grpc.RpcError):
            rpc_pb2_grpc.ClusterStub(isolated.channel()).MemberList(rpc_pb2.MemberListRequest(), timeout=3)
        # /health turns false on the minority once it has no leader (check-quorum steps it down)
        def health_code() -> int:
            try:
                with urllib.request.urlopen(f"http://{isolated.endpoint}/health", timeout=5) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code
        wait_until(lambda: health_code() == 503, timeout=30, what="/health false on the minority")
        # a serializable read on the minority still answers (possibly stale), as in etcd
        kv_min.Range(rpc_pb2.RangeRequest(key=b"lin/0", serializable=True), timeout=3)
        rpc_pb2_grpc.KVStub(new_leader.channel()).Put(rpc_pb2.PutRequest(key=b"majority", value=b"y"), timeout=5)

        before = len(rec.ops)
        wait_until(lambda: len(rec.ops) > before + 50, timeout=30, what="majority traffic")
        for m in members:
            m.heal()
        wait_until(lambda: rpc_pb2_grpc.KVStub(isolated.channel()).Range(
            rpc_pb2.RangeRequest(key=b"majority"), timeout=3).count == 1, timeout=30,
            what="the isolated member to converge")
        rec.finish()

        rev = rpc_pb2_grpc.KVStub(new_leader.channel()).Range(
            rpc_pb2.RangeRequest(key=b"majority"), timeout=5).header.revision
        hashes = set()
        for m in members:
            wait_until(lambda m=m: m.status().raftAppliedIndex >= new_leader.status().raftAppliedIndex - 5,
                       timeout=30, what="apply to settle")
            hashes.add(rpc_pb2_grpc.MaintenanceStub(m.channel()).HashKV(
                rpc_pb2.HashKVRequest(revision=rev), timeout=5).hash)
        assert len(hashes) == 1
        result = check(rec.ops)
        assert result.ok, result.summary()
        assert sum(1 for o in rec.ops if o.outcome == "ok") > 100
    finally:
        rec.finish()
        for m in members:
            if m.is_running():
                m.stop()
