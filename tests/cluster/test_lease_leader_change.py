"""Leases across a leader change: remaining TTLs are checkpointed through the log, so a new leader
does not hand every lease its full TTL again; keep-alives sent to a follower reach the leader."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from e2e_support.cluster import leader_of, start_cluster
from e2e_support.polling import wait_until
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

TTL = 40


@pytest.mark.requires_flavour("kvetch")
def test_leader_change_keeps_remaining_ttl(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path)
    try:
        leader = leader_of(members)
        follower = next(m for m in members if m is not leader)
        lease = rpc_pb2_grpc.LeaseStub(leader.channel()).LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=TTL), timeout=5)
        # a keep-alive through a follower is forwarded to the leader and answered with the TTL
        ka = rpc_pb2_grpc.LeaseStub(follower.channel()).LeaseKeepAlive(
            iter([rpc_pb2.LeaseKeepAliveRequest(ID=lease.ID)]), timeout=10)
        assert next(ka).TTL == TTL
        renewed = time.monotonic()

        def ttl_on(m) -> int:  # type: ignore[no-untyped-def]
            return rpc_pb2_grpc.LeaseStub(m.channel()).LeaseTimeToLive(
                rpc_pb2.LeaseTimeToLiveRequest(ID=lease.ID), timeout=5).TTL

        # wait past a checkpoint round (every 5 s on the leader)
        wait_until(lambda: ttl_on(leader) <= TTL - 8, timeout=30, what="the lease to run down")
        leader.kill()
        survivors = [m for m in members if m is not leader]
        new_leader = leader_of(survivors, timeout=30)
        elapsed = time.monotonic() - renewed
        ttl = ttl_on(new_leader)
        # Without checkpoints the new leader would restart it at the full TTL plus one election
        # timeout of grace (>= TTL). Checkpoints run every 5 s, so the new leader's view may lag
        # the true remaining time by up to 5 s plus the grace.
        assert ttl <= TTL - elapsed + 5 + 1, (ttl, elapsed)
        assert ttl < TTL - 1
        assert ttl > 0
    finally:
        for m in members:
            if m.is_running():
                m.stop()
