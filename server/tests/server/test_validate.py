"""Request checks give etcd's errors in etcd's order (v3rpc key.go rules)."""

from __future__ import annotations

import pytest
from kvetch.api.etcdserverpb import rpc_pb2 as pb
from kvetch.server import errors, validate


def put(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=b"v"))


def delete(key: bytes, end: bytes = b"") -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=end))


def nested(success: list[pb.RequestOp], failure: list[pb.RequestOp] | None = None) -> pb.RequestOp:
    return pb.RequestOp(request_txn=pb.TxnRequest(success=success, failure=failure or []))


def test_empty_key_rejected_for_every_kv_request() -> None:
    with pytest.raises(errors.RPCError) as e:
        validate.check_range(pb.RangeRequest())
    assert e.value == errors.EMPTY_KEY
    with pytest.raises(errors.RPCError):
        validate.check_put(pb.PutRequest(value=b"x"))
    with pytest.raises(errors.RPCError):
        validate.check_delete(pb.DeleteRangeRequest())
    with pytest.raises(errors.RPCError) as e:
        validate.check_txn(pb.TxnRequest(compare=[pb.Compare(key=b"")]), 128)
    assert e.value == errors.EMPTY_KEY


def test_put_ignore_flags_conflicting_with_values() -> None:
    with pytest.raises(errors.RPCError) as e:
        validate.check_put(pb.PutRequest(key=b"k", value=b"v", ignore_value=True))
    assert e.value == errors.VALUE_PROVIDED
    with pytest.raises(errors.RPCError) as e:
        validate.check_put(pb.PutRequest(key=b"k", lease=5, ignore_lease=True))
    assert e.value == errors.LEASE_PROVIDED


def test_too_many_ops_counts_the_largest_branch() -> None:
    ok = pb.TxnRequest(success=[put(b"k%d" % i) for i in range(128)])
    validate.check_txn(ok, 128)
    too_many = pb.TxnRequest(success=[put(b"k%d" % i) for i in range(129)])
    with pytest.raises(errors.RPCError) as e:
        validate.check_txn(too_many, 128)
    assert e.value == errors.TOO_MANY_OPS
    assert e.value.code.name == "INVALID_ARGUMENT"


def test_duplicate_put_in_one_branch() -> None:
    with pytest.raises(errors.RPCError) as e:
        validate.check_txn(pb.TxnRequest(success=[put(b"a"), put(b"a")]), 128)
    assert e.value == errors.DUPLICATE_KEY


def test_put_inside_deleted_range_is_duplicate() -> None:
    with pytest.raises(errors.RPCError):
        validate.check_txn(pb.TxnRequest(success=[delete(b"a", b"c"), put(b"b")]), 128)
    # outside the deleted range is fine
    validate.check_txn(pb.TxnRequest(success=[delete(b"a", b"c"), put(b"c")]), 128)
    # etcd 3.5 quirk, matched: a from-key delete (range_end "\0") never conflicts with a put
    validate.check_txn(pb.TxnRequest(success=[delete(b"a", b"\x00"), put(b"zzz")]), 128)


def test_same_key_in_both_branches_of_nested_txn_is_allowed() -> None:
    validate.check_txn(pb.TxnRequest(success=[nested([put(b"k")], [put(b"k")])]), 128)
    with pytest.raises(errors.RPCError):
        validate.check_txn(pb.TxnRequest(success=[nested([put(b"k")]), put(b"k")]), 128)


def test_read_only_and_serializable_detection() -> None:
    ro = pb.TxnRequest(success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"a", serializable=True))])
    assert validate.is_txn_read_only(ro)
    assert validate.is_txn_serializable(ro)
    rw = pb.TxnRequest(failure=[nested([put(b"x")])])
    assert not validate.is_txn_read_only(rw)
