"""Two real releases side by side: kvetch 0.1.0 (built from its commit in the releases file, in a
venv of its own) and the current tree (0.2). Rolling upgrade, downgrade through the Downgrade API,
cancel after a partial downgrade, refusal of an old binary, and the 0.2-only log entry (batched
lease revocation) that must never reach a 0.1 member.

Every step checks each member's /version, the data and HashKV on all members, with writes running.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest
from e2e_support.cluster import Member, leader_of, start_cluster
from e2e_support.polling import wait_until
from e2e_support.server import ServerStartError
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kvetch.version import CLUSTER_VERSION

pytestmark = [pytest.mark.requires_flavour("kvetch"), pytest.mark.slow]
OLD = "0.1"
DG = rpc_pb2.DowngradeRequest


@pytest.fixture(scope="session")
def old_kvetch() -> list[str]:
    """argv prefix of kvetch 0.1.0, built from the commit the releases file records (cached)."""
    from kvetch_compat.versions import VersionSpec, resolve

    resolved = resolve(VersionSpec.parse("kvetch@0.1.0"))
    assert resolved.version == "0.1.0"
    return resolved.server_argv


def version_doc(m: Member) -> dict[str, str]:
    with urllib.request.urlopen(f"http://{m.endpoint}/version", timeout=5) as resp:
        return json.loads(resp.read())


def cluster_versions(members: list[Member]) -> set[str]:
    return {version_doc(m)["etcdcluster"] for m in members}


def wait_cluster_version(members: list[Member], expected: str, timeout: float = 30) -> None:
    wait_until(lambda: cluster_versions(members) == {expected + ".0"}, timeout=timeout,
               what=f"cluster version {expected} on every member")


def replace_binary(m: Member, command: list[str] | None) -> None:
    """Stop a member and start another build on the same data dir."""
    m.stop()
    m.command = command
    m.start(timeout=60)


class Writer:
    """Background writes through every member; keeps the acknowledged keys."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self.acked: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            m = self.members[n % len(self.members)]
            key = b"w/%06d" % n
            try:
                if m.is_running():
                    rpc_pb2_grpc.KVStub(m.channel()).Put(rpc_pb2.PutRequest(key=key, value=b"v"), timeout=3)
                    self.acked.append(key)
            except (grpc.RpcError, ValueError):
                pass  # an error or a member being restarted (its channel closed): not acknowledged
            n += 1

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def check_converged(members: list[Member], acked: list[bytes]) -> None:
    """Every acknowledged write on every member, and one HashKV at a common revision."""
    acked = list(acked)  # the writer keeps appending: judge what was acknowledged before the reads
    leader = leader_of(members)
    rev = rpc_pb2_grpc.KVStub(leader.channel()).Range(rpc_pb2.RangeRequest(key=b"w/"), timeout=5).header.revision
    for m in members:
        kv = rpc_pb2_grpc.KVStub(m.channel())
        wait_until(lambda kv=kv: kv.Range(rpc_pb2.RangeRequest(key=b"w/", range_end=b"w0", count_only=True,
                                                               serializable=True), timeout=5).count
                   >= len(acked), timeout=30, what="replication")
        got = kv.Range(rpc_pb2.RangeRequest(key=b"w/", range_end=b"w0", keys_only=True), timeout=5)
        missing = set(acked) - {kv_.key for kv_ in got.kvs}
        assert not missing, (m.name, m.status(), sorted(missing))
    hashes = {rpc_pb2_grpc.MaintenanceStub(m.channel()).HashKV(rpc_pb2.HashKVRequest(revision=rev),
                                                              timeout=10).hash for m in members}
    assert len(hashes) == 1


def expire_lease_with_keys(members: list[Member], tag: str) -> None:
    """Grant a short lease with keys, wait until every member has deleted them."""
    leader = leader_of(members)
    lease = rpc_pb2_grpc.LeaseStub(leader.channel()).LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=2), timeout=5)
    kv = rpc_pb2_grpc.KVStub(leader.channel())
    for i in range(3):
        kv.Put(rpc_pb2.PutRequest(key=f"lease/{tag}/{i}".encode(), value=b"v", lease=lease.ID), timeout=5)
    for m in members:
        mkv = rpc_pb2_grpc.KVStub(m.channel())
        wait_until(lambda mkv=mkv: mkv.Range(rpc_pb2.RangeRequest(key=f"lease/{tag}/".encode(),
                                                                  range_end=f"lease/{tag}0".encode(),
                                                                  count_only=True, serializable=True),
                                             timeout=5).count == 0,
                   timeout=30, what=f"lease keys to expire on {m.name}")


def revoked_batched(members: list[Member]) -> set[bool]:
    seen = set()
    for m in members:
        for line in m.log_text().splitlines():
            if '"msg":"revoking expired leases"' in line:
                seen.add(json.loads(line)["batched"])
    return seen


def test_rolling_upgrade_keeps_old_version_until_last_member(tmp_path: Path, old_kvetch: list[str]) -> None:
    members = start_cluster("kvetch", 3, tmp_path, commands=[old_kvetch] * 3)
    try:
        wait_cluster_version(members, OLD)
        leader = leader_of(members)
        order = [m for m in members if m is not leader] + [leader]  # leader last
        with Writer(members) as w:
            for i, m in enumerate(order):
                replace_binary(m, None)
                assert version_doc(m)["etcdserver"].startswith(CLUSTER_VERSION)
                if i < len(order) - 1:
                    wait_cluster_version(members, OLD)
                    if i == 0:
                        # put a 0.2 binary in charge of lease expiry while the cluster is mixed
                        current = leader_of(members)
                        target = m.status().header.member_id
                        rpc_pb2_grpc.MaintenanceStub(current.channel()).MoveLeader(
                            rpc_pb2.MoveLeaderRequest(targetID=target), timeout=15)
                        assert leader_of(members) is m
                    # mixed: the 0.2-only entry must not be used; the 0.1 members delete the keys too
                    expire_lease_with_keys(members, f"mixed{i}")
                    check_converged(members, w.acked)
            wait_cluster_version(members, CLUSTER_VERSION)
            expire_lease_with_keys(members, "upgraded")
        check_converged(members, w.acked)
        assert revoked_batched(members) == {False, True}
    finally:
        for m in members:
            if m.is_running():
                m.stop()


def test_downgrade_every_member_then_refusal_and_cancel(tmp_path: Path, old_kvetch: list[str]) -> None:
    members = start_cluster("kvetch", 3, tmp_path)
    try:
        wait_cluster_version(members, CLUSTER_VERSION)
        # an old binary refuses to join while the cluster is at 0.2 and no downgrade is enabled
        victim = members[2]
        victim.stop()
        victim.command = old_kvetch
        with pytest.raises(ServerStartError):
            victim.start(timeout=15)
        assert "server version is lower than determined cluster version" in victim.log_text()
        victim.command = None
        victim.start(timeout=60)

        maint = rpc_pb2_grpc.MaintenanceStub(members[0].channel())
        assert maint.Downgrade(DG(action=DG.VALIDATE, version=OLD), timeout=10).version == CLUSTER_VERSION + ".0"
        maint.Downgrade(DG(action=DG.ENABLE, version=OLD), timeout=10)
        wait_cluster_version(members, OLD)
        for m in members:
            st = m.status()
            assert st.downgradeInfo.enabled and st.downgradeInfo.targetVersion == OLD + ".0"
        with Writer(members) as w:
            for m in members:
                replace_binary(m, old_kvetch)
                assert version_doc(m)["etcdserver"] == "0.1.0"
                check_converged(members, w.acked)
        # every member runs the target: the leader completes the downgrade by itself
        wait_until(lambda: not any(m.status().downgradeInfo.enabled for m in members), timeout=30,
                   what="downgrade completion")
        assert any("the cluster has been downgraded" in m.log_text() for m in members)
        wait_cluster_version(members, OLD)
        check_converged(members, w.acked)
    finally:
        for m in members:
            if m.is_running():
                m.stop()


@pytest.mark.parametrize("downgraded", [1, 2])
def test_partial_downgrade_then_cancel_and_upgrade_back(tmp_path: Path, old_kvetch: list[str],
                                                        downgraded: int) -> None:
    members = start_cluster("kvetch", 3, tmp_path)
    try:
        wait_cluster_version(members, CLUSTER_VERSION)
        maint = rpc_pb2_grpc.MaintenanceStub(members[0].channel())
        maint.Downgrade(DG(action=DG.ENABLE, version=OLD), timeout=10)
        wait_cluster_version(members, OLD)
        for m in members:
            assert "the server is ready to downgrade" in m.log_text()
        for m in members[1:1 + downgraded]:
            replace_binary(m, old_kvetch)  # 1 or 2 of 3 members on 0.1.0
        maint.Downgrade(DG(action=DG.CANCEL), timeout=10)
        wait_until(lambda: not any(m.status().downgradeInfo.enabled for m in members), timeout=30,
                   what="cancel to apply")
        # 0.1 members remain: the cluster version stays at the minimum, 0.1
        wait_cluster_version(members, OLD)
        for m in members[1:1 + downgraded]:
            replace_binary(m, None)
        wait_cluster_version(members, CLUSTER_VERSION)
    finally:
        for m in members:
            if m.is_running():
                m.stop()
