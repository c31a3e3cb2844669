"""Thin synchronous gRPC client over the etcd v3 API stubs shipped by the kvetch package.

Owns channel creation and the handful of calls the matrix needs (KV, Lease,
Watch, Cluster, Maintenance). Nothing here interprets results: callers do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from kvetch.api.etcdserverpb import rpc_pb2 as pb
from kvetch.api.etcdserverpb import rpc_pb2_grpc as pbg

DOWNGRADE_ACTIONS = {"validate": 0, "enable": 1, "cancel": 2}


def endpoint_target(url: str) -> str:
    """`http://127.0.0.1:2379` -> `127.0.0.1:2379`."""
    return url.split("://", 1)[-1].rstrip("/")


@dataclass
class RpcError(Exception):
    """A gRPC failure reduced to what the checks need."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def definitely_not_applied(self) -> bool:
        """True when the server rejected the request before proposing it."""
        return self.code in {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "PERMISSION_DENIED",
                             "UNAUTHENTICATED", "NOT_FOUND", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED"}


def _wrap(exc: grpc.RpcError) -> RpcError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return RpcError(code.name if code is not None else "UNKNOWN", details or "")


class Client:
    """One channel to one member."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            endpoint_target(url), options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self.kv = pbg.KVStub(self._channel)
        self.lease = pbg.LeaseStub(self._channel)
        self.watch_stub = pbg.WatchStub(self._channel)
        self.cluster = pbg.ClusterStub(self._channel)
        self.maint = pbg.MaintenanceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn, req, timeout: float | None = None):  # type: ignore[no-untyped-def]
        try:
            return fn(req, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise _wrap(exc) from None

    # KV
    def put(self, key: bytes, value: bytes, lease: int = 0) -> pb.PutResponse:
        return self._call(self.kv.Put, pb.PutRequest(key=key, value=value, lease=lease))

    def get(self, key: bytes, *, prefix: bool = False, revision: int = 0,
            serializable: bool = False) -> pb.RangeResponse:
        req = pb.RangeRequest(key=key, revision=revision, serializable=serializable)
        if prefix:
            req.range_end = prefix_end(key)
        return self._call(self.kv.Range, req)

    def delete(self, key: bytes) -> pb.DeleteRangeResponse:
        return self._call(self.kv.DeleteRange, pb.DeleteRangeRequest(key=key))

    def cas(self, key: bytes, expected: bytes | None, new: bytes) -> pb.TxnResponse:
        """Txn: if value(key)==expected (or key absent when None) then put else range."""
        if expected is None:
            cmp = pb.Compare(key=key, target=pb.Compare.VERSION, result=pb.Compare.EQUAL, version=0)
        else:
            cmp = pb.Compare(key=key, target=pb.Compare.VALUE, result=pb.Compare.EQUAL, value=expected)
        req = pb.TxnRequest(
            compare=[cmp],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=key, value=new))],
            failure=[pb.RequestOp(request_range=pb.RangeRequest(key=key))],
        )
        return self._call(self.kv.Txn, req)

    # Lease
    def lease_grant(self, ttl: int) -> pb.LeaseGrantResponse:
        return self._call(self.lease.LeaseGrant, pb.LeaseGrantRequest(TTL=ttl))

    def lease_revoke(self, lease_id: int) -> pb.LeaseRevokeResponse:
        return self._call(self.lease.LeaseRevoke, pb.LeaseRevokeRequest(ID=lease_id))

    # Cluster
    def member_list(self, linearizable: bool = True) -> pb.MemberListResponse:
        try:
            return self._call(self.cluster.MemberList, pb.MemberListRequest(linearizable=linearizable))
        except RpcError:
            if not linearizable:
                raise
            return self._call(self.cluster.MemberList, pb.MemberListRequest())

    def member_add(self, peer_urls: list[str]) -> pb.MemberAddResponse:
        return self._call(self.cluster.MemberAdd, pb.MemberAddRequest(peerURLs=peer_urls), timeout=15)

    def member_remove(self, member_id: int) -> pb.MemberRemoveResponse:
        return self._call(self.cluster.MemberRemove, pb.MemberRemoveRequest(ID=member_id), timeout=15)

    # Maintenance
    def status(self) -> pb.StatusResponse:
        return self._call(self.maint.Status, pb.StatusRequest())

    def hash_kv(self, revision: int) -> pb.HashKVResponse:
        return self._call(self.maint.HashKV, pb.HashKVRequest(revision=revision), timeout=15)

    def move_leader(self, target_id: int) -> pb.MoveLeaderResponse:
        return self._call(self.maint.MoveLeader, pb.MoveLeaderRequest(targetID=target_id), timeout=15)

    def downgrade(self, action: str, version: str = "") -> pb.DowngradeResponse:
        req = pb.DowngradeRequest(action=DOWNGRADE_ACTIONS[action], version=version)
        return self._call(self.maint.Downgrade, req, timeout=15)

    def alarms(self) -> pb.AlarmResponse:
        return self._call(self.maint.Alarm, pb.AlarmRequest(action=pb.AlarmRequest.GET))

    # Watch
    def watch(self, key: bytes, start_revision: int, stop: threading.Event) -> Iterator[pb.WatchResponse]:
        """Yield watch responses on a prefix until `stop` is set or the stream breaks."""
        create = pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=key, range_end=prefix_end(key), start_revision=start_revision))

        def requests() -> Iterator[pb.WatchRequest]:
            yield create
            stop.wait()

        call = self.watch_stub.Watch(requests())
        watcher = threading.Thread(target=lambda: (stop.wait(), call.cancel()), daemon=True)
        watcher.start()
        try:
            yield from call
        except grpc.RpcError as exc:
            if not stop.is_set():
                raise _wrap(exc) from None


def prefix_end(key: bytes) -> bytes:
    """The range_end that makes [key, end) cover every key with this prefix."""
    b = bytearray(key)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\0"
