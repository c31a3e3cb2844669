"""Request checks done before a request is proposed, with etcd's errors and in etcd's order."""

from __future__ import annotations

from typing import Any

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.server import errors

_SORT_TARGETS = frozenset(rpc_pb2.RangeRequest.SortTarget.values())


def check_range(r: rpc_pb2.RangeRequest) -> None:
    if not r.key:
        raise errors.EMPTY_KEY
    if r.sort_target not in _SORT_TARGETS:
        # etcd 3.5.1 crashes on this (nil sorter); 3.6 answers "invalid sort option". An unknown
        # sort_order means "unsorted" in 3.5, which kvetch keeps.
        raise errors.INVALID_SORT_OPTION


def check_put(r: rpc_pb2.PutRequest) -> None:
    if not r.key:
        raise errors.EMPTY_KEY
    if r.ignore_value and r.value:
        raise errors.VALUE_PROVIDED
    if r.ignore_lease and r.lease != 0:
        raise errors.LEASE_PROVIDED


def check_delete(r: rpc_pb2.DeleteRangeRequest) -> None:
    if not r.key:
        raise errors.EMPTY_KEY


def check_txn(r: rpc_pb2.TxnRequest, max_txn_ops: int) -> None:
    _check_txn_ops(r, max_txn_ops)
    _check_intervals(r.success)
    _check_intervals(r.failure)


def _check_txn_ops(r: rpc_pb2.TxnRequest, max_txn_ops: int) -> None:
    opc = max(len(r.compare), len(r.success), len(r.failure))
    if opc > max_txn_ops:
        raise errors.TOO_MANY_OPS
    for c in r.compare:
        if not c.key:
            raise errors.EMPTY_KEY
    for ops in (r.success, r.failure):
        for op in ops:
            _check_op(op, max_txn_ops - opc)


def _check_op(op: rpc_pb2.RequestOp, max_txn_ops: int) -> None:
    which = op.WhichOneof("request")
    if which == "request_range":
        check_range(op.request_range)
    elif which == "request_put":
        check_put(op.request_put)
    elif which == "request_delete_range":
        check_delete(op.request_delete_range)
    elif which == "request_txn":
        _check_txn_ops(op.request_txn, max_txn_ops)
    else:
        raise errors.KEY_NOT_FOUND


class _Deletes:
    """The key intervals deleted by a list of ops (end None = point, b'' = open-ended)."""

    def __init__(self) -> None:
        self.points: set[bytes] = set()
        self.ranges: list[tuple[bytes, bytes]] = []  # [start, end) with b'' meaning +inf

    def add(self, key: bytes, end: bytes) -> None:
        if not end:
            self.points.add(key)
        elif end == b"\x00":
            # etcd 3.5 builds the interval [key, "\x00") for a from-key delete, which is empty:
            # such deletes never conflict with puts in its duplicate-key check. Matched here.
            return
        else:
            self.ranges.append((key, end))

    def union(self, other: _Deletes) -> None:
        self.points |= other.points
        self.ranges.extend(other.ranges)

    def contains(self, key: bytes) -> bool:
        if key in self.points:
            return True
        return any(start <= key and (end == b"" or key < end) for start, end in self.ranges)


def _check_intervals(ops: Any) -> tuple[set[bytes], _Deletes]:
    """etcd's duplicate-key rule: a key may be put once, and not put where it is deleted."""
    dels = _Deletes()
    for op in ops:
        if op.WhichOneof("request") == "request_delete_range":
            d = op.request_delete_range
            dels.add(d.key, d.range_end)
    puts: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        puts_then, dels_then = _check_intervals(op.request_txn.success)
        puts_else, dels_else = _check_intervals(op.request_txn.failure)
        for k in puts_then:
            if k in puts or dels.contains(k):
                raise errors.DUPLICATE_KEY
            puts.add(k)
        for k in puts_else:
            if (k in puts and k not in puts_then) or dels.contains(k):
                raise errors.DUPLICATE_KEY
            puts.add(k)
        dels.union(dels_then)
        dels.union(dels_else)
    for op in ops:
        if op.WhichOneof("request") != "request_put":
            continue
        k = op.request_put.key
        if k in puts or dels.contains(k):
            raise errors.DUPLICATE_KEY
        puts.add(k)
    return puts, dels


def is_txn_read_only(r: rpc_pb2.TxnRequest) -> bool:
    for ops in (r.success, r.failure):
        for op in ops:
            which = op.WhichOneof("request")
            if which in ("request_put", "request_delete_range"):
                return False
            if which == "request_txn" and not is_txn_read_only(op.request_txn):
                return False
    return True


def is_txn_serializable(r: rpc_pb2.TxnRequest) -> bool:
    for ops in (r.success, r.failure):
        for op in ops:
            which = op.WhichOneof("request")
            if which == "request_range" and not op.request_range.serializable:
                return False
            if which == "request_txn" and not is_txn_serializable(op.request_txn):
                return False
    return True
