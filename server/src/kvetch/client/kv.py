"""The KV API: range, put, delete, txn, compact."""

from __future__ import annotations

from typing import Any

from kvetch.api.etcdserverpb import rpc_pb2

from .ops import KeyLike, Txn, delete_request, put_request, range_request, txn_is_read_only
from .transport import Transport


class KV:
    """Key-value calls; responses are the etcd protobuf messages."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get(
        self, key: KeyLike, range_end: KeyLike | None = None, *, timeout: float | None = None, **opts: Any
    ) -> rpc_pb2.RangeResponse:
        """Range over ``key`` (options: prefix, from_key, limit, revision, sort_order, sort_target,
        serializable, keys_only, count_only, min/max_mod_revision, min/max_create_revision)."""
        return await self.range_request(range_request(key, range_end, **opts), timeout=timeout)

    async def range_request(
        self, req: rpc_pb2.RangeRequest, *, timeout: float | None = None
    ) -> rpc_pb2.RangeResponse:
        return await self._t.unary("KV/Range", req, rpc_pb2.RangeResponse, idempotent=True, timeout=timeout)

    async def put(
        self,
        key: KeyLike,
        value: KeyLike = b"",
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
        timeout: float | None = None,
    ) -> rpc_pb2.PutResponse:
        req = put_request(
            key, value, lease=lease, prev_kv=prev_kv, ignore_value=ignore_value, ignore_lease=ignore_lease
        )
        return await self._t.unary("KV/Put", req, rpc_pb2.PutResponse, idempotent=False, timeout=timeout)

    async def delete(
        self,
        key: KeyLike,
        range_end: KeyLike | None = None,
        *,
        prefix: bool = False,
        from_key: bool = False,
        prev_kv: bool = False,
        timeout: float | None = None,
    ) -> rpc_pb2.DeleteRangeResponse:
        req = delete_request(key, range_end, prefix=prefix, from_key=from_key, prev_kv=prev_kv)
        return await self._t.unary(
            "KV/DeleteRange", req, rpc_pb2.DeleteRangeResponse, idempotent=False, timeout=timeout
        )

    async def put_request(self, req: rpc_pb2.PutRequest, *, timeout: float | None = None) -> rpc_pb2.PutResponse:
        return await self._t.unary("KV/Put", req, rpc_pb2.PutResponse, idempotent=False, timeout=timeout)

    async def delete_request(
        self, req: rpc_pb2.DeleteRangeRequest, *, timeout: float | None = None
    ) -> rpc_pb2.DeleteRangeResponse:
        return await self._t.unary(
            "KV/DeleteRange", req, rpc_pb2.DeleteRangeResponse, idempotent=False, timeout=timeout
        )

    def txn(self) -> Txn:
        """Start a txn builder bound to this client."""
        return Txn(self)

    async def txn_request(self, req: rpc_pb2.TxnRequest, *, timeout: float | None = None) -> rpc_pb2.TxnResponse:
        return await self._t.unary(
            "KV/Txn", req, rpc_pb2.TxnResponse, idempotent=txn_is_read_only(req), timeout=timeout
        )

    async def compact(
        self, revision: int, *, physical: bool = False, timeout: float | None = None
    ) -> rpc_pb2.CompactionResponse:
        req = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        return await self._t.unary("KV/Compact", req, rpc_pb2.CompactionResponse, idempotent=False, timeout=timeout)
