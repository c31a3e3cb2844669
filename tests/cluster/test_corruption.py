"""Corruption check: a member whose backend was altered behind the cluster's back is found by the
periodic HashKV comparison, and the CORRUPT alarm stops the cluster from serving KV requests."""

from __future__ import annotations

from pathlib import Path

import grpc
import lmdb
import pytest
from e2e_support.cluster import leader_of, start_cluster
from e2e_support.etcdctl import run_etcdctl
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kvetch.api.mvccpb import kv_pb2


def corrupt_backend(data_dir: Path) -> None:
    """Flip the value of the newest record in the `key` bucket (kvetch's LMDB layout)."""
    env = lmdb.open(str(data_dir / "member" / "snap" / "db"), subdir=False, max_dbs=32, lock=False)
    try:
        db = env.open_db(b"key", create=False)
        with env.begin(write=True, db=db) as txn:
            cur = txn.cursor()
            assert cur.last()
            kv = kv_pb2.KeyValue.FromString(cur.value())
            kv.value = b"CORRUPTED"
            txn.put(cur.key(), kv.SerializeToString())
    finally:
        env.close()


@pytest.mark.requires_flavour("kvetch")
def test_periodic_check_raises_corrupt_alarm(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path, extra_args=["--experimental-corrupt-check-time", "1s"])
    try:
        for i in range(10):
            run_etcdctl("3.5", "put", f"k{i}", "v", server=members[0], check=True)
        leader = leader_of(members)
        victim = next(m for m in members if m is not leader)
        victim_id = victim.status().header.member_id
        victim.stop()
        corrupt_backend(victim.data_dir)
        victim.launch()  # no readiness wait: the alarm may stop its reads before they succeed
        wait_until(lambda: "alarm:CORRUPT" in run_etcdctl("3.5", "alarm", "list", server=leader,
                                                          check=True).stdout, timeout=30,
                   what="the CORRUPT alarm")
        alarms = run_etcdctl("3.5", "alarm", "list", server=leader, check=True).stdout
        assert f"memberID:{victim_id} alarm:CORRUPT" in alarms
        with pytest.raises(grpc.RpcError) as err:
            rpc_pb2_grpc.KVStub(leader.channel()).Put(rpc_pb2.PutRequest(key=b"x", value=b"y"), timeout=5)
        assert err.value.code() == grpc.StatusCode.DATA_LOSS
        assert err.value.details() == "etcdserver: corrupt cluster"
        assert "found data inconsistency with peers" in leader.log_text()
    finally:
        for m in members:
            if m.is_running():
                m.stop()


@pytest.mark.requires_flavour("kvetch")
def test_initial_check_on_start_raises_corrupt_alarm(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path, extra_args=["--experimental-initial-corrupt-check"])
    try:
        for i in range(10):
            run_etcdctl("3.5", "put", f"k{i}", "v", server=members[0], check=True)
        leader = leader_of(members)
        victim = next(m for m in members if m is not leader)
        victim_id = victim.status().header.member_id
        victim.stop()
        corrupt_backend(victim.data_dir)
        victim.launch()
        wait_until(lambda: "checkInitialHashKV failed" in victim.log_text(), timeout=30,
                   what="the initial corruption check on start")
        wait_until(lambda: f"memberID:{victim_id} alarm:CORRUPT" in run_etcdctl(
            "3.5", "alarm", "list", server=leader, check=True).stdout, timeout=30, what="the CORRUPT alarm")
    finally:
        for m in members:
            if m.is_running():
                m.stop()
