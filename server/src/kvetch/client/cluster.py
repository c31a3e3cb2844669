"""The Cluster API: member list, add, remove, update, promote."""

from __future__ import annotations

from kvetch.api.etcdserverpb import rpc_pb2

from .transport import Transport


class Cluster:
    """Membership calls."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def member_list(
        self, *, linearizable: bool = False, timeout: float | None = None, endpoint: str | None = None
    ) -> rpc_pb2.MemberListResponse:
        req = rpc_pb2.MemberListRequest(linearizable=linearizable)
        return await self._t.unary(
            "Cluster/MemberList", req, rpc_pb2.MemberListResponse, idempotent=True, timeout=timeout,
            endpoint=endpoint,
        )

    async def member_add(
        self, peer_urls: list[str], *, is_learner: bool = False, timeout: float | None = None
    ) -> rpc_pb2.MemberAddResponse:
        req = rpc_pb2.MemberAddRequest(peerURLs=peer_urls, isLearner=is_learner)
        return await self._t.unary("Cluster/MemberAdd", req, rpc_pb2.MemberAddResponse, idempotent=False, timeout=timeout)

    async def member_remove(self, member_id: int, *, timeout: float | None = None) -> rpc_pb2.MemberRemoveResponse:
        req = rpc_pb2.MemberRemoveRequest(ID=member_id)
        return await self._t.unary(
            "Cluster/MemberRemove", req, rpc_pb2.MemberRemoveResponse, idempotent=False, timeout=timeout
        )

    async def member_update(
        self, member_id: int, peer_urls: list[str], *, timeout: float | None = None
    ) -> rpc_pb2.MemberUpdateResponse:
        req = rpc_pb2.MemberUpdateRequest(ID=member_id, peerURLs=peer_urls)
        return await self._t.unary(
            "Cluster/MemberUpdate", req, rpc_pb2.MemberUpdateResponse, idempotent=False, timeout=timeout
        )

    async def member_promote(self, member_id: int, *, timeout: float | None = None) -> rpc_pb2.MemberPromoteResponse:
        req = rpc_pb2.MemberPromoteRequest(ID=member_id)
        return await self._t.unary(
            "Cluster/MemberPromote", req, rpc_pb2.MemberPromoteResponse, idempotent=False, timeout=timeout
        )
