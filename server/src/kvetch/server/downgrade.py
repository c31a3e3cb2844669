"""Maintenance.Downgrade: VALIDATE, ENABLE and CANCEL with etcd's (3.6) semantics and errors.

The downgrade state (enabled, target MAJOR.MINOR) is agreed through the log
(``downgrade_info_set``); enabling lowers the cluster version to the target,
cancelling restores it to the minimum of the members' versions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kvetch.api.etcdserverpb import raft_internal_pb2, rpc_pb2
from kvetch.api.membershippb import membership_pb2
from kvetch.server import errors

if TYPE_CHECKING:
    from kvetch.server.core import KvetchServer

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def parse_target(text: str) -> tuple[int, int]:
    """MAJOR.MINOR of a downgrade target written X.Y or X.Y.Z; etcd's format error otherwise."""
    m = _SEMVER.match(text.strip())
    if not m:
        raise errors.WRONG_DOWNGRADE_VERSION_FORMAT
    return int(m.group(1)), int(m.group(2))


def _cluster(s: KvetchServer) -> tuple[int, int]:
    major, minor = s.cluster_version.split(".")[:2]
    return int(major), int(minor)


def validate_target(s: KvetchServer, target: tuple[int, int]) -> None:
    if s.downgrade.get("enabled"):
        raise errors.DOWNGRADE_IN_PROCESS
    major, minor = _cluster(s)
    if target != (major, minor - 1):
        raise errors.INVALID_DOWNGRADE_TARGET_VERSION


async def downgrade(s: KvetchServer, r: rpc_pb2.DowngradeRequest) -> rpc_pb2.DowngradeResponse:
    action = r.action
    if action == rpc_pb2.DowngradeRequest.VALIDATE:
        target = parse_target(r.version)
        if not s.cluster_version:
            raise errors.CLUSTER_VERSION_UNAVAILABLE
        await s.linearizable_barrier()
        validate_target(s, target)
        return s.fill(rpc_pb2.DowngradeResponse(version=s.cluster_version + ".0"))
    if action == rpc_pb2.DowngradeRequest.ENABLE:
        target = parse_target(r.version)
        if not s.cluster_version:
            raise errors.CLUSTER_VERSION_UNAVAILABLE
        await s.linearizable_barrier()
        validate_target(s, target)
        ver = f"{target[0]}.{target[1]}.0"
        await s.propose(raft_internal_pb2.InternalRaftRequest(
            downgrade_info_set=membership_pb2.DowngradeInfoSetRequest(enabled=True, ver=ver)))
        await s.propose(raft_internal_pb2.InternalRaftRequest(
            cluster_version_set=membership_pb2.ClusterVersionSetRequest(ver=ver)))
        s.log.info("the cluster is ready to downgrade", **{"target-version": ver})
        return s.fill(rpc_pb2.DowngradeResponse(version=s.cluster_version + ".0"))
    if action == rpc_pb2.DowngradeRequest.CANCEL:
        # Cancelling with nothing in progress is not an error (etcd 3.6 only logs it).
        if s.downgrade.get("enabled"):
            await s.propose(raft_internal_pb2.InternalRaftRequest(
                downgrade_info_set=membership_pb2.DowngradeInfoSetRequest(enabled=False)))
            if s.cluster is None:
                from kvetch.version import CLUSTER_VERSION

                # A lone member is every member: its own version is the minimum.
                await s.propose(raft_internal_pb2.InternalRaftRequest(
                    cluster_version_set=membership_pb2.ClusterVersionSetRequest(ver=CLUSTER_VERSION + ".0")))
            s.log.info("cancelled downgrade", **{"cluster-version": s.cluster_version})
        else:
            s.log.warn("no downgrade is in progress; nothing to cancel")
        return s.fill(rpc_pb2.DowngradeResponse(version=s.cluster_version + ".0"))
    raise errors.RPCError(errors.Code.UNIMPLEMENTED, "etcdserver: unknown method")
