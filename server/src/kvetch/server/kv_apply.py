"""Applying KV requests to a store view: Range, Put, DeleteRange, Txn, with etcd's semantics.

The functions take a *view* of the MVCC store: a reader for read-only requests,
or a writer (one revision, reads see its own earlier writes) for mutations.
Errors are raised before anything is written, so a failing request changes
nothing. Lease attachment is kept in step through the ``LeaseHooks``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.server import errors

RangeRequest = rpc_pb2.RangeRequest
Compare = rpc_pb2.Compare


class View(Protocol):
    def range(self, key: bytes, end: bytes | None, *, rev: int = 0, limit: int = 0,
              count_only: bool = False, keys_only: bool = False) -> Any: ...


class Writer(View, Protocol):
    def put(self, key: bytes, value: bytes, lease: int) -> Any: ...

    def delete_range(self, key: bytes, end: bytes | None) -> list[Any]: ...

    @property
    def rev(self) -> int: ...


class LeaseHooks(Protocol):
    def exists(self, lease_id: int) -> bool: ...

    def attach(self, lease_id: int, key: bytes) -> None: ...

    def detach(self, lease_id: int, key: bytes) -> None: ...


_SORT_KEYS: dict[int, Callable[[Any], Any]] = {
    RangeRequest.KEY: lambda kv: kv.key,
    RangeRequest.VERSION: lambda kv: kv.version,
    RangeRequest.CREATE: lambda kv: kv.create_revision,
    RangeRequest.MOD: lambda kv: kv.mod_revision,
    RangeRequest.VALUE: lambda kv: kv.value,
}


def apply_range(view: View, r: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
    filtered = bool(r.min_mod_revision or r.max_mod_revision or r.min_create_revision or r.max_create_revision)
    limit = r.limit
    if r.sort_order != RangeRequest.NONE or filtered:
        limit = 0
    if limit > 0:
        limit += 1
    # Values are needed to sort by value; keys_only is applied after sorting (as etcd does).
    fetch_keys_only = r.keys_only and r.sort_target != RangeRequest.VALUE
    result = view.range(r.key, r.range_end or None, rev=r.revision, limit=limit,
                        count_only=r.count_only, keys_only=fetch_keys_only)
    kvs: Sequence[Any] = result.kvs
    if filtered:
        kvs = [
            kv for kv in kvs
            if not (r.max_mod_revision and kv.mod_revision > r.max_mod_revision)
            and not (r.min_mod_revision and kv.mod_revision < r.min_mod_revision)
            and not (r.max_create_revision and kv.create_revision > r.max_create_revision)
            and not (r.min_create_revision and kv.create_revision < r.min_create_revision)
        ]
    order = r.sort_order
    if r.sort_target != RangeRequest.KEY and order == RangeRequest.NONE:
        order = RangeRequest.ASCEND
    keyfn = _SORT_KEYS.get(r.sort_target)
    already_sorted = r.sort_target == RangeRequest.KEY and order == RangeRequest.ASCEND
    if keyfn is not None and order in (RangeRequest.ASCEND, RangeRequest.DESCEND) and not already_sorted:
        kvs = sorted(kvs, key=keyfn, reverse=order == RangeRequest.DESCEND)
    resp = rpc_pb2.RangeResponse(count=result.count)
    if r.limit > 0 and len(kvs) > r.limit:
        kvs = kvs[: r.limit]
        resp.more = True
    resp.header.revision = result.rev
    if kvs:
        if r.keys_only:
            for kv in kvs:
                if kv.value:
                    kv.value = b""
        resp.kvs.extend(kvs)
    return resp


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


#: ``b"\x12" + varint(n)`` (the tag and length of a ``kvs`` entry) for every n below 16 KiB:
#: one list lookup per KeyValue instead of a varint loop.
_KV_FIELD_HEADS = [b"\x12" + _varint(n) for n in range(1 << 14)]


def _kv_field_head(n: int) -> bytes:
    return _KV_FIELD_HEADS[n] if n < 16384 else b"\x12" + _varint(n)


def raw_range_eligible(r: rpc_pb2.RangeRequest) -> bool:
    """Ranges whose reply is the stored KeyValues as they are: no filter, no sort, values wanted."""
    return not (r.keys_only or r.count_only or r.min_mod_revision or r.max_mod_revision
                or r.min_create_revision or r.max_create_revision
                or r.sort_target != RangeRequest.KEY
                or r.sort_order not in (RangeRequest.NONE, RangeRequest.ASCEND))


def apply_range_raw(reader: Any, r: rpc_pb2.RangeRequest, header: rpc_pb2.ResponseHeader) -> bytes:
    """A RangeResponse encoded directly from the stored KeyValue bytes (etcd's field numbers:
    header 1, kvs 2, more 3, count 4), so a large range is never parsed nor built twice."""
    limit = r.limit + 1 if r.limit > 0 else 0
    kvs, count, rev = reader.range_raw(r.key, r.range_end or None, rev=r.revision, limit=limit)
    more = r.limit > 0 and len(kvs) > r.limit
    if more:
        kvs.truncate(r.limit)
    if header.revision == 0:
        header.revision = rev
    h = header.SerializeToString()
    parts = [b"\x0a", _varint(len(h)), h]
    for values in kvs.chunks():
        # [tag+length, KeyValue] pairs interleaved by slice assignment (C loops), one bytes per chunk
        fields: list[bytes] = [b""] * (2 * len(values))
        fields[0::2] = [_kv_field_head(n) for n in map(len, values)]
        fields[1::2] = values
        parts.append(b"".join(fields))
        del fields, values
    if more:
        parts.append(b"\x18\x01")
    if count:
        parts.append(b"\x20")
        parts.append(_varint(count))
    return b"".join(parts)


def check_put_in(view: View, p: rpc_pb2.PutRequest, leases: LeaseHooks) -> None:
    """Apply-time checks of a put: the lease exists; ignore_* need an existing key."""
    if p.lease and not leases.exists(p.lease):
        raise errors.LEASE_NOT_FOUND
    if (p.ignore_value or p.ignore_lease) and not view.range(p.key, None).kvs:
        raise errors.KEY_NOT_FOUND


def apply_put(w: Writer, p: rpc_pb2.PutRequest, leases: LeaseHooks) -> rpc_pb2.PutResponse:
    value, lease = p.value, p.lease
    prev = None
    if p.ignore_value or p.ignore_lease or p.prev_kv:
        found = w.range(p.key, None).kvs
        prev = found[0] if found else None
        if (p.ignore_value or p.ignore_lease) and prev is None:
            raise errors.KEY_NOT_FOUND
        if p.ignore_value and prev is not None:
            value = prev.value
        if p.ignore_lease and prev is not None:
            lease = prev.lease
    old = w.put(p.key, value, lease)
    if old is not None and old.lease and old.lease != lease:
        leases.detach(old.lease, p.key)
    if lease:
        leases.attach(lease, p.key)
    resp = rpc_pb2.PutResponse()
    if p.prev_kv and prev is not None:
        resp.prev_kv.CopyFrom(prev)
    resp.header.revision = w.rev
    return resp


def apply_delete(w: Writer, d: rpc_pb2.DeleteRangeRequest, leases: LeaseHooks) -> rpc_pb2.DeleteRangeResponse:
    prevs = w.delete_range(d.key, d.range_end or None)
    for kv in prevs:
        if kv.lease:
            leases.detach(kv.lease, kv.key)
    resp = rpc_pb2.DeleteRangeResponse(deleted=len(prevs))
    if d.prev_kv and prevs:
        resp.prev_kvs.extend(prevs)
    resp.header.revision = w.rev
    return resp


# --- Txn ------------------------------------------------------------------------

def _compare_one(c: rpc_pb2.Compare, kv: Any) -> bool:
    target = c.target
    a: Any
    b: Any
    if target == Compare.VALUE:
        a, b = (kv.value if kv is not None else b""), c.value
    elif target == Compare.CREATE:
        a, b = (kv.create_revision if kv is not None else 0), c.create_revision
    elif target == Compare.MOD:
        a, b = (kv.mod_revision if kv is not None else 0), c.mod_revision
    elif target == Compare.VERSION:
        a, b = (kv.version if kv is not None else 0), c.version
    elif target == Compare.LEASE:
        a, b = (kv.lease if kv is not None else 0), c.lease
    else:
        return True
    result = c.result
    if result == Compare.EQUAL:
        return a == b
    if result == Compare.NOT_EQUAL:
        return a != b
    if result == Compare.GREATER:
        return a > b  # type: ignore[operator]
    if result == Compare.LESS:
        return a < b  # type: ignore[operator]
    return True


def _compare(view: View, c: rpc_pb2.Compare) -> bool:
    try:
        kvs = view.range(c.key, c.range_end or None).kvs
    except errors.RPCError:
        return False
    if not kvs:
        if c.target == Compare.VALUE:
            return False
        return _compare_one(c, None)
    return all(_compare_one(c, kv) for kv in kvs)


def txn_path(view: View, t: rpc_pb2.TxnRequest) -> list[bool]:
    """Evaluate the compares of a txn and of the nested txns on the taken branches."""
    ok = all(_compare(view, c) for c in t.compare)
    path = [ok]
    for op in (t.success if ok else t.failure):
        if op.WhichOneof("request") == "request_txn":
            path.extend(txn_path(view, op.request_txn))
    return path


def _taken_ops(t: rpc_pb2.TxnRequest, path: list[bool]) -> tuple[list[Any], int]:
    """The ops of the branches a txn takes, nested txns flattened in execution order."""
    out: list[Any] = []
    consumed = 0
    rest = path[1:]
    for op in (t.success if path[0] else t.failure):
        if op.WhichOneof("request") == "request_txn":
            inner, n = _taken_ops(op.request_txn, rest)
            out.extend(inner)
            consumed += n + 1
            rest = rest[n + 1:]
        else:
            out.append(op)
    return out, consumed


def _covered(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    if end == b"\x00":
        return key >= start
    return start <= key < end


def check_txn_requests(view: View, t: rpc_pb2.TxnRequest, path: list[bool], leases: LeaseHooks,
                       writes: bool, current_rev: int, compact_rev: int) -> None:
    """Apply-time checks on the taken branches, as etcd orders them: every put first, then ranges.

    A put with ignore_value/ignore_lease on a key that an earlier op of the same txn deleted is
    refused here with "key not found" (etcd 3.5 panics applying it); nothing is written then.
    """
    ops, _ = _taken_ops(t, path)
    if writes:
        deleted: list[tuple[bytes, bytes]] = []
        for op in ops:
            which = op.WhichOneof("request")
            if which == "request_delete_range":
                deleted.append((op.request_delete_range.key, op.request_delete_range.range_end))
            elif which == "request_put":
                p = op.request_put
                check_put_in(view, p, leases)
                if (p.ignore_value or p.ignore_lease) and any(_covered(p.key, k, e) for k, e in deleted):
                    raise errors.KEY_NOT_FOUND
    for op in ops:
        if op.WhichOneof("request") == "request_range":
            rev = op.request_range.revision
            if rev > current_rev:
                raise errors.FUTURE_REV
            if rev > 0 and rev < compact_rev:
                raise errors.COMPACTED


def apply_txn_ops(view: Any, t: rpc_pb2.TxnRequest, path: list[bool], leases: LeaseHooks,
                  resp: rpc_pb2.TxnResponse) -> int:
    """Run the taken branch of a txn into ``resp``; returns nested txns consumed from ``path``."""
    consumed = 0
    ok = path[0]
    resp.succeeded = ok
    rest = path[1:]
    for op in (t.success if ok else t.failure):
        which = op.WhichOneof("request")
        out = resp.responses.add()
        if which == "request_range":
            out.response_range.CopyFrom(apply_range(view, op.request_range))
        elif which == "request_put":
            out.response_put.CopyFrom(apply_put(view, op.request_put, leases))
        elif which == "request_delete_range":
            out.response_delete_range.CopyFrom(apply_delete(view, op.request_delete_range, leases))
        elif which == "request_txn":
            inner = out.response_txn
            inner.header.SetInParent()  # etcd leaves nested txn headers empty
            n = apply_txn_ops(view, op.request_txn, rest, leases, inner)
            consumed += n + 1
            rest = rest[n + 1:]
    return consumed
