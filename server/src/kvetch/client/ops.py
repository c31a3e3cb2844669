"""Request builders: key ranges, RangeRequest/Put/Delete ops, compares and the txn builder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvetch.api.etcdserverpb import rpc_pb2

if TYPE_CHECKING:
    from .kv import KV

KeyLike = bytes | str

SORT_ORDERS = {"none": 0, "ascend": 1, "descend": 2}
SORT_TARGETS = {"key": 0, "version": 1, "create": 2, "mod": 3, "value": 4}


def to_bytes(v: KeyLike) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


def prefix_range_end(key: bytes) -> bytes:
    """The range end that covers every key with prefix ``key`` (``\\0`` = to the end)."""
    end = bytearray(key)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


def key_range(
    key: KeyLike, range_end: KeyLike | None = None, *, prefix: bool = False, from_key: bool = False
) -> tuple[bytes, bytes]:
    """Resolve (key, range_end) from etcd's prefix/from-key options."""
    k = to_bytes(key)
    if prefix:
        if not k:
            return b"\x00", b"\x00"
        return k, prefix_range_end(k)
    if from_key:
        return (k or b"\x00"), b"\x00"
    return k, (to_bytes(range_end) if range_end is not None else b"")


def _enum(v: int | str | None, table: dict[str, int]) -> int:
    if v is None:
        return 0
    if isinstance(v, str):
        return table[v.lower()]
    return int(v)


def range_request(
    key: KeyLike,
    range_end: KeyLike | None = None,
    *,
    prefix: bool = False,
    from_key: bool = False,
    limit: int = 0,
    revision: int = 0,
    sort_order: int | str | None = None,
    sort_target: int | str | None = None,
    serializable: bool = False,
    keys_only: bool = False,
    count_only: bool = False,
    min_mod_revision: int = 0,
    max_mod_revision: int = 0,
    min_create_revision: int = 0,
    max_create_revision: int = 0,
) -> rpc_pb2.RangeRequest:
    k, end = key_range(key, range_end, prefix=prefix, from_key=from_key)
    return rpc_pb2.RangeRequest(
        key=k,
        range_end=end,
        limit=limit,
        revision=revision,
        sort_order=_enum(sort_order, SORT_ORDERS),  # type: ignore[arg-type]
        sort_target=_enum(sort_target, SORT_TARGETS),  # type: ignore[arg-type]
        serializable=serializable,
        keys_only=keys_only,
        count_only=count_only,
        min_mod_revision=min_mod_revision,
        max_mod_revision=max_mod_revision,
        min_create_revision=min_create_revision,
        max_create_revision=max_create_revision,
    )


def put_request(
    key: KeyLike,
    value: KeyLike = b"",
    *,
    lease: int = 0,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
) -> rpc_pb2.PutRequest:
    return rpc_pb2.PutRequest(
        key=to_bytes(key),
        value=to_bytes(value),
        lease=lease,
        prev_kv=prev_kv,
        ignore_value=ignore_value,
        ignore_lease=ignore_lease,
    )


def delete_request(
    key: KeyLike,
    range_end: KeyLike | None = None,
    *,
    prefix: bool = False,
    from_key: bool = False,
    prev_kv: bool = False,
) -> rpc_pb2.DeleteRangeRequest:
    k, end = key_range(key, range_end, prefix=prefix, from_key=from_key)
    return rpc_pb2.DeleteRangeRequest(key=k, range_end=end, prev_kv=prev_kv)


class Op:
    """Constructors of txn operations (``RequestOp``)."""

    @staticmethod
    def get(key: KeyLike, range_end: KeyLike | None = None, **kw: Any) -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(request_range=range_request(key, range_end, **kw))

    @staticmethod
    def put(key: KeyLike, value: KeyLike = b"", **kw: Any) -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(request_put=put_request(key, value, **kw))

    @staticmethod
    def delete(key: KeyLike, range_end: KeyLike | None = None, **kw: Any) -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(request_delete_range=delete_request(key, range_end, **kw))

    @staticmethod
    def txn(
        compare: list[rpc_pb2.Compare],
        success: list[rpc_pb2.RequestOp],
        failure: list[rpc_pb2.RequestOp] | None = None,
    ) -> rpc_pb2.RequestOp:
        return rpc_pb2.RequestOp(
            request_txn=rpc_pb2.TxnRequest(compare=compare, success=success, failure=failure or [])
        )


_RESULTS = {
    "=": rpc_pb2.Compare.EQUAL,
    "==": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    ">": rpc_pb2.Compare.GREATER,
    "<": rpc_pb2.Compare.LESS,
}


class Compare:
    """Constructors of txn compares: ``Compare.value("k", "=", "v")``, ``Compare.mod("k", ">", 0)``."""

    @staticmethod
    def _make(key: KeyLike, op: str, target: int, field: str, value: Any, range_end: KeyLike | None) -> rpc_pb2.Compare:
        if op not in _RESULTS:
            raise ValueError(f"unknown compare operator {op!r}")
        c = rpc_pb2.Compare(key=to_bytes(key), result=_RESULTS[op], target=target)  # type: ignore[arg-type]
        if range_end is not None:
            c.range_end = to_bytes(range_end)
        setattr(c, field, value)
        return c

    @staticmethod
    def version(key: KeyLike, op: str, version: int, range_end: KeyLike | None = None) -> rpc_pb2.Compare:
        return Compare._make(key, op, rpc_pb2.Compare.VERSION, "version", version, range_end)

    @staticmethod
    def create(key: KeyLike, op: str, revision: int, range_end: KeyLike | None = None) -> rpc_pb2.Compare:
        return Compare._make(key, op, rpc_pb2.Compare.CREATE, "create_revision", revision, range_end)

    @staticmethod
    def mod(key: KeyLike, op: str, revision: int, range_end: KeyLike | None = None) -> rpc_pb2.Compare:
        return Compare._make(key, op, rpc_pb2.Compare.MOD, "mod_revision", revision, range_end)

    @staticmethod
    def value(key: KeyLike, op: str, value: KeyLike, range_end: KeyLike | None = None) -> rpc_pb2.Compare:
        return Compare._make(key, op, rpc_pb2.Compare.VALUE, "value", to_bytes(value), range_end)

    @staticmethod
    def lease(key: KeyLike, op: str, lease_id: int, range_end: KeyLike | None = None) -> rpc_pb2.Compare:
        return Compare._make(key, op, rpc_pb2.Compare.LEASE, "lease", lease_id, range_end)


class Txn:
    """Fluent builder: ``await kv.txn().if_(...).then(...).else_(...).commit()``."""

    def __init__(self, kv: KV | None = None) -> None:
        self._kv = kv
        self.compare: list[rpc_pb2.Compare] = []
        self.success: list[rpc_pb2.RequestOp] = []
        self.failure: list[rpc_pb2.RequestOp] = []

    def if_(self, *cmps: rpc_pb2.Compare) -> Txn:
        self.compare.extend(cmps)
        return self

    def then(self, *ops: rpc_pb2.RequestOp) -> Txn:
        self.success.extend(ops)
        return self

    def else_(self, *ops: rpc_pb2.RequestOp) -> Txn:
        self.failure.extend(ops)
        return self

    def request(self) -> rpc_pb2.TxnRequest:
        return rpc_pb2.TxnRequest(compare=self.compare, success=self.success, failure=self.failure)

    async def commit(self, *, timeout: float | None = None) -> rpc_pb2.TxnResponse:
        if self._kv is None:
            raise RuntimeError("this Txn is not bound to a client")
        return await self._kv.txn_request(self.request(), timeout=timeout)


def txn_is_read_only(req: rpc_pb2.TxnRequest) -> bool:
    for op in list(req.success) + list(req.failure):
        kind = op.WhichOneof("request")
        if kind == "request_txn":
            if not txn_is_read_only(op.request_txn):
                return False
        elif kind != "request_range":
            return False
    return True
