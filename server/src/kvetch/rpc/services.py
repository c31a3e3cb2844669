"""The etcd v3 services (KV, Watch, Lease, Cluster, Maintenance, Auth) as an API table.

Each handler validates, calls the member (``KvetchServer``) and returns the
response message; errors are ``RPCError``. The same table is served over gRPC
(``grpc_server``) and the JSON gateway, so both transports answer alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from kvetch.api.etcdserverpb import rpc_pb2 as pb
from kvetch.rpc.api import API, Method
from kvetch.server import errors
from kvetch.server.core import KvetchServer
from kvetch.server.downgrade import downgrade
from kvetch.server.watch import serve_watch


def _learner_allows(req: Any) -> bool:
    """etcd: a learner serves only Status and serializable Range (isRPCSupportedForLearner)."""
    if isinstance(req, pb.StatusRequest):
        return True
    return isinstance(req, pb.RangeRequest) and req.serializable


def build_api(s: KvetchServer) -> API:
    api = API()

    def unary(service: str, name: str, req: type, resp: type, fn: Callable[[Any], Awaitable[Any]]) -> None:
        async def guarded(request: Any) -> Any:
            if s.is_learner() and not _learner_allows(request):
                raise errors.NOT_SUPPORTED_FOR_LEARNER
            return await fn(request)
        api.add(Method(f"/etcdserverpb.{service}/{name}", req, resp, "unary", guarded))

    def sync(fn: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
        async def call(req: Any) -> Any:
            return fn(req)
        return call

    # KV
    unary("KV", "Range", pb.RangeRequest, pb.RangeResponse, s.range)
    unary("KV", "Put", pb.PutRequest, pb.PutResponse, s.put)
    unary("KV", "DeleteRange", pb.DeleteRangeRequest, pb.DeleteRangeResponse, s.delete_range)
    unary("KV", "Txn", pb.TxnRequest, pb.TxnResponse, s.txn)
    unary("KV", "Compact", pb.CompactionRequest, pb.CompactionResponse, s.compact)

    # Watch
    def watch(requests: AsyncIterator[pb.WatchRequest]) -> AsyncIterator[pb.WatchResponse]:
        if s.is_learner():
            raise errors.NOT_SUPPORTED_FOR_LEARNER
        return serve_watch(s.hub, requests)
    api.add(Method("/etcdserverpb.Watch/Watch", pb.WatchRequest, pb.WatchResponse, "bidi_stream", watch))

    # Lease
    unary("Lease", "LeaseGrant", pb.LeaseGrantRequest, pb.LeaseGrantResponse, s.lease_grant)
    unary("Lease", "LeaseRevoke", pb.LeaseRevokeRequest, pb.LeaseRevokeResponse, s.lease_revoke)
    unary("Lease", "LeaseTimeToLive", pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse,
          s.lease_time_to_live)
    unary("Lease", "LeaseLeases", pb.LeaseLeasesRequest, pb.LeaseLeasesResponse, sync(lambda _r: s.lease_leases()))

    async def keepalive(requests: AsyncIterator[pb.LeaseKeepAliveRequest]) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        if s.is_learner():
            raise errors.NOT_SUPPORTED_FOR_LEARNER
        async for req in requests:
            ttl = await s.lease_keepalive(req.ID)
            yield s.fill(pb.LeaseKeepAliveResponse(ID=req.ID, TTL=ttl))
    api.add(Method("/etcdserverpb.Lease/LeaseKeepAlive", pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse,
                   "bidi_stream", keepalive))

    # Cluster
    unary("Cluster", "MemberAdd", pb.MemberAddRequest, pb.MemberAddResponse, s.member_add)
    unary("Cluster", "MemberRemove", pb.MemberRemoveRequest, pb.MemberRemoveResponse, s.member_remove)
    unary("Cluster", "MemberUpdate", pb.MemberUpdateRequest, pb.MemberUpdateResponse, s.member_update)
    unary("Cluster", "MemberList", pb.MemberListRequest, pb.MemberListResponse, s.member_list)
    unary("Cluster", "MemberPromote", pb.MemberPromoteRequest, pb.MemberPromoteResponse, s.member_promote)

    # Maintenance
    unary("Maintenance", "Alarm", pb.AlarmRequest, pb.AlarmResponse, s.alarm)
    unary("Maintenance", "Status", pb.StatusRequest, pb.StatusResponse, sync(lambda _r: s.status()))
    unary("Maintenance", "Defragment", pb.DefragmentRequest, pb.DefragmentResponse, sync(lambda _r: s.defragment()))
    unary("Maintenance", "Hash", pb.HashRequest, pb.HashResponse, sync(lambda _r: s.hash()))
    unary("Maintenance", "HashKV", pb.HashKVRequest, pb.HashKVResponse, sync(s.hash_kv))
    unary("Maintenance", "MoveLeader", pb.MoveLeaderRequest, pb.MoveLeaderResponse, s.move_leader)

    async def do_downgrade(req: pb.DowngradeRequest) -> pb.DowngradeResponse:
        return await downgrade(s, req)
    unary("Maintenance", "Downgrade", pb.DowngradeRequest, pb.DowngradeResponse, do_downgrade)

    def snapshot(_req: pb.SnapshotRequest) -> AsyncIterator[pb.SnapshotResponse]:
        return s.snapshot()
    api.add(Method("/etcdserverpb.Maintenance/Snapshot", pb.SnapshotRequest, pb.SnapshotResponse,
                   "server_stream", snapshot))

    # Auth: kvetch has no authentication yet; answer as an etcd with auth disabled.
    async def auth_status(_req: pb.AuthStatusRequest) -> pb.AuthStatusResponse:
        return s.fill(pb.AuthStatusResponse(enabled=False, authRevision=0))
    unary("Auth", "AuthStatus", pb.AuthStatusRequest, pb.AuthStatusResponse, auth_status)

    async def auth_disable(_req: pb.AuthDisableRequest) -> pb.AuthDisableResponse:
        return s.fill(pb.AuthDisableResponse())
    unary("Auth", "AuthDisable", pb.AuthDisableRequest, pb.AuthDisableResponse, auth_disable)

    async def not_enabled(_req: Any) -> Any:
        raise errors.AUTH_NOT_ENABLED

    async def not_capable(_req: Any) -> Any:
        raise errors.NOT_CAPABLE
    unary("Auth", "Authenticate", pb.AuthenticateRequest, pb.AuthenticateResponse, not_enabled)
    for name, req_t, resp_t in (
        ("AuthEnable", pb.AuthEnableRequest, pb.AuthEnableResponse),
        ("UserAdd", pb.AuthUserAddRequest, pb.AuthUserAddResponse),
        ("UserGet", pb.AuthUserGetRequest, pb.AuthUserGetResponse),
        ("UserList", pb.AuthUserListRequest, pb.AuthUserListResponse),
        ("UserDelete", pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse),
        ("UserChangePassword", pb.AuthUserChangePasswordRequest, pb.AuthUserChangePasswordResponse),
        ("UserGrantRole", pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse),
        ("UserRevokeRole", pb.AuthUserRevokeRoleRequest, pb.AuthUserRevokeRoleResponse),
        ("RoleAdd", pb.AuthRoleAddRequest, pb.AuthRoleAddResponse),
        ("RoleGet", pb.AuthRoleGetRequest, pb.AuthRoleGetResponse),
        ("RoleList", pb.AuthRoleListRequest, pb.AuthRoleListResponse),
        ("RoleDelete", pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse),
        ("RoleGrantPermission", pb.AuthRoleGrantPermissionRequest, pb.AuthRoleGrantPermissionResponse),
        ("RoleRevokePermission", pb.AuthRoleRevokePermissionRequest, pb.AuthRoleRevokePermissionResponse),
    ):
        unary("Auth", name, req_t, resp_t, not_capable)
    return api
