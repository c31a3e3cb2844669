"""A follower stopped while more than --snapshot-count writes happen is restarted and catches up
through a snapshot of the leader's backend (its log was compacted past what it had)."""

from __future__ import annotations

from pathlib import Path

from e2e_support.cluster import leader_of, start_cluster
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

SNAPSHOT_COUNT = 100


def test_lagging_follower_catches_up_by_snapshot(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path, extra_args=["--snapshot-count", str(SNAPSHOT_COUNT)])
    try:
        leader = leader_of(members)
        follower = next(m for m in members if m is not leader)
        follower.stop()
        kv = rpc_pb2_grpc.KVStub(leader.channel())
        writes = 6 * SNAPSHOT_COUNT
        for i in range(writes):
            kv.Put(rpc_pb2.PutRequest(key=b"snap/%04d" % i, value=b"v%d" % i), timeout=10)
        rev = kv.Range(rpc_pb2.RangeRequest(key=b"snap/0000"), timeout=5).header.revision
        follower.start()
        fkv = rpc_pb2_grpc.KVStub(follower.channel())
        wait_until(lambda: fkv.Range(rpc_pb2.RangeRequest(key=b"snap/", range_end=b"snap0", count_only=True,
                                                          serializable=True), timeout=5).count == writes,
                   timeout=60, what="the follower to catch up")
        hashes = {rpc_pb2_grpc.MaintenanceStub(m.channel()).HashKV(rpc_pb2.HashKVRequest(revision=rev),
                                                                  timeout=10).hash for m in members}
        assert len(hashes) == 1
        if flavour == "kvetch":
            assert "applied incoming snapshot" in follower.log_text()
        # the caught-up member keeps working as a follower
        kv.Put(rpc_pb2.PutRequest(key=b"after", value=b"1"), timeout=10)
        wait_until(lambda: fkv.Range(rpc_pb2.RangeRequest(key=b"after", serializable=True), timeout=5).count == 1,
                   timeout=30, what="replication after the snapshot")
    finally:
        for m in members:
            if m.is_running():
                m.stop()
