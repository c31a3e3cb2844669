"""The asyncio client: one object bundling KV, Watch, Lease, Cluster, Maintenance and Auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from kvetch.api.etcdserverpb import rpc_pb2

from .auth import Auth
from .cluster import Cluster
from .kv import KV
from .lease import Lease
from .maintenance import Maintenance
from .ops import KeyLike, Txn
from .transport import TLS, Transport
from .watch import Watch, Watcher


class Client:
    """An etcd v3 client on grpc.aio.

    ``Client(["127.0.0.1:2379", "http://10.0.0.2:2379"], timeout=5, dial_timeout=2)``.
    ``tls=TLS.from_files(ca, cert, key)`` turns TLS on for every endpoint (``https://``
    endpoints use it with the system roots anyway). Must be used inside a running event loop; ``async with Client(...) as c:`` closes it.
    The sub-APIs are ``kv``, ``watcher``, ``lease``, ``cluster``, ``maintenance``, ``auth``;
    the common calls are also available on the client itself.
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        timeout: float | None = None,
        dial_timeout: float = 5.0,
        user: str | None = None,
        password: str | None = None,
        tls: TLS | None = None,
    ) -> None:
        self.transport = Transport(
            endpoints, timeout=timeout, dial_timeout=dial_timeout, user=user, password=password, tls=tls
        )
        self.kv = KV(self.transport)
        self.watcher = Watcher(self.transport)
        self.lease = Lease(self.transport)
        self.cluster = Cluster(self.transport)
        self.maintenance = Maintenance(self.transport)
        self.auth = Auth(self.transport)

    @property
    def endpoints(self) -> list[str]:
        return [e.url for e in self.transport.endpoints]

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.watcher.close()
        await self.transport.close()

    # -- KV shortcuts -------------------------------------------------------------
    async def get(self, key: KeyLike, range_end: KeyLike | None = None, **opts: Any) -> rpc_pb2.RangeResponse:
        return await self.kv.get(key, range_end, **opts)

    async def put(self, key: KeyLike, value: KeyLike = b"", **opts: Any) -> rpc_pb2.PutResponse:
        return await self.kv.put(key, value, **opts)

    async def delete(self, key: KeyLike, range_end: KeyLike | None = None, **opts: Any) -> rpc_pb2.DeleteRangeResponse:
        return await self.kv.delete(key, range_end, **opts)

    def txn(self) -> Txn:
        return self.kv.txn()

    async def compact(self, revision: int, *, physical: bool = False) -> rpc_pb2.CompactionResponse:
        return await self.kv.compact(revision, physical=physical)

    # -- watch / lease shortcuts -----------------------------------------------------
    async def watch(self, key: KeyLike, range_end: KeyLike | None = None, **opts: Any) -> Watch:
        return await self.watcher.watch(key, range_end, **opts)

    async def grant(self, ttl: int, lease_id: int = 0) -> rpc_pb2.LeaseGrantResponse:
        return await self.lease.grant(ttl, lease_id)

    async def revoke(self, lease_id: int) -> rpc_pb2.LeaseRevokeResponse:
        return await self.lease.revoke(lease_id)

    def keep_alive(self, lease_id: int) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        return self.lease.keep_alive(lease_id)

    # -- maintenance shortcuts -------------------------------------------------------
    async def status(self, endpoint: str | None = None) -> rpc_pb2.StatusResponse:
        return await self.maintenance.status(endpoint=endpoint)

    async def member_list(self) -> rpc_pb2.MemberListResponse:
        return await self.cluster.member_list()
