"""Malformed and hostile requests: both servers give the same gRPC code and message.

Each case also pins etcd 3.5.1's answer, so an etcd-vs-etcd run checks the
facts themselves, not only the agreement. Nothing a rejected request carries
may change the store: the HashKV after all cases must still match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from differential.harness import Mismatch, Outcome, Pair
from e2e_support.grpcapi import Stubs, pb

MiB = 1024 * 1024
T = 10.0

INVALID, OUT_OF_RANGE, NOT_FOUND = "INVALID_ARGUMENT", "OUT_OF_RANGE", "NOT_FOUND"
FAILED_PRECONDITION = "FAILED_PRECONDITION"


def put(key: bytes, **kw: Any) -> Callable[[Stubs], Any]:
    return lambda s: s.kv.Put(pb.PutRequest(key=key, **kw), timeout=T)


def rng(key: bytes, **kw: Any) -> Callable[[Stubs], Any]:
    return lambda s: s.kv.Range(pb.RangeRequest(key=key, **kw), timeout=T)


def txn(**kw: Any) -> Callable[[Stubs], Any]:
    return lambda s: s.kv.Txn(pb.TxnRequest(**kw), timeout=T)


def op_put(key: bytes, value: bytes = b"v") -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value))


def op_del(key: bytes, end: bytes = b"") -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=end))


# name -> (request, expected error or None for "succeeds")
CASES: dict[str, tuple[Callable[[Stubs], Any], tuple[str, str] | None]] = {
    "put empty key": (put(b"", value=b"x"), (INVALID, "etcdserver: key is not provided")),
    "range empty key": (rng(b""), (INVALID, "etcdserver: key is not provided")),
    "delete empty key": (lambda s: s.kv.DeleteRange(pb.DeleteRangeRequest(key=b""), timeout=T),
                         (INVALID, "etcdserver: key is not provided")),
    "range future revision": (rng(b"a", revision=1000),
                              (OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")),
    "range compacted revision": (rng(b"a", revision=2),
                                 (OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")),
    # etcd 3.5.1 does not validate sort_order: an unknown value means "do not sort"
    "range invalid sort order": (rng(b"a", sort_order=7), None),
    "range negative limit": (rng(b"a", limit=-1), None),
    "range end before key": (rng(b"z", range_end=b"a"), None),
    "txn 129 puts": (txn(success=[op_put(b"k%03d" % i) for i in range(129)]),
                     (INVALID, "etcdserver: too many operations in txn request")),
    "txn 129 compares": (txn(compare=[pb.Compare(key=b"a", target=pb.Compare.VERSION)] * 129),
                         (INVALID, "etcdserver: too many operations in txn request")),
    "txn 128 puts": (txn(success=[op_put(b"k%03d" % i) for i in range(128)]), None),
    "txn duplicate put": (txn(success=[op_put(b"d"), op_put(b"d")]),
                          (INVALID, "etcdserver: duplicate key given in txn request")),
    "txn put inside deleted range": (txn(success=[op_del(b"a", b"c"), op_put(b"b")]),
                                     (INVALID, "etcdserver: duplicate key given in txn request")),
    "txn duplicate across nested txn": (
        txn(success=[op_put(b"n"), pb.RequestOp(request_txn=pb.TxnRequest(success=[op_put(b"n")]))]),
        (INVALID, "etcdserver: duplicate key given in txn request")),
    # etcd 3.5.1's overlap check misses a delete whose range_end is "\0" (from key):
    # the put is accepted and both ops apply
    "txn put inside from-key delete": (txn(success=[op_del(b"a", b"\0"), op_put(b"b")]), None),
    "txn same key in success and failure": (txn(success=[op_put(b"s")], failure=[op_put(b"s")]), None),
    "txn two deletes of one key": (txn(success=[op_del(b"a"), op_del(b"a")]), None),
    "txn empty key in op": (txn(success=[op_put(b"")]), (INVALID, "etcdserver: key is not provided")),
    "txn put unknown lease": (txn(success=[pb.RequestOp(request_put=pb.PutRequest(key=b"l", lease=4321))]),
                              (NOT_FOUND, "etcdserver: requested lease not found")),
    # etcd checks every put of the chosen branch (leases, ignore_value) before any
    # range (revisions), so the later put's error wins over the earlier range's
    "txn error precedence": (txn(success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"a", revision=1000)),
                                          pb.RequestOp(request_put=pb.PutRequest(key=b"l", lease=4321))]),
                             (NOT_FOUND, "etcdserver: requested lease not found")),
    "txn range future revision": (txn(success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"a", revision=1000))]),
                                  (OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")),
    "put unknown lease": (put(b"a", value=b"x", lease=4321), (NOT_FOUND, "etcdserver: requested lease not found")),
    "put ignore_value missing key": (put(b"missing", ignore_value=True), (INVALID, "etcdserver: key not found")),
    "put ignore_value with value": (put(b"a", value=b"x", ignore_value=True),
                                    (INVALID, "etcdserver: value is provided")),
    "put ignore_lease with lease": (put(b"a", value=b"x", lease=5, ignore_lease=True),
                                    (INVALID, "etcdserver: lease is provided")),
    "put too large": (put(b"big", value=b"x" * (MiB + MiB // 2 + 1)),
                      (INVALID, "etcdserver: request is too large")),
    "compact future": (lambda s: s.kv.Compact(pb.CompactionRequest(revision=1000), timeout=T),
                       (OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")),
    "compact already compacted": (lambda s: s.kv.Compact(pb.CompactionRequest(revision=2), timeout=T),
                                  (OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")),
    "lease grant existing id": (lambda s: s.lease.LeaseGrant(pb.LeaseGrantRequest(ID=5, TTL=60), timeout=T),
                                (FAILED_PRECONDITION, "etcdserver: lease already exists")),
    "lease grant huge ttl": (lambda s: s.lease.LeaseGrant(pb.LeaseGrantRequest(ID=6, TTL=10**12), timeout=T),
                             (OUT_OF_RANGE, "etcdserver: too large lease TTL")),
    "lease grant negative id": (lambda s: s.lease.LeaseGrant(pb.LeaseGrantRequest(ID=-5, TTL=60), timeout=T),
                                None),
    "lease revoke unknown": (lambda s: s.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=4321), timeout=T),
                             (NOT_FOUND, "etcdserver: requested lease not found")),
    "lease ttl unknown": (lambda s: s.lease.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=4321), timeout=T),
                          None),
    "hashkv future": (lambda s: s.maintenance.HashKV(pb.HashKVRequest(revision=1000), timeout=T),
                      (OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")),
    "hashkv compacted": (lambda s: s.maintenance.HashKV(pb.HashKVRequest(revision=2), timeout=T),
                         (OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")),
}


def prepare(pair: Pair) -> None:
    """Revisions 2..5 written, compacted at 4, lease 5 granted."""
    for i in range(4):
        out = pair.put(pb.PutRequest(key=b"a", value=b"%d" % i))
        assert out.error is None
    assert pair.compact(pb.CompactionRequest(revision=4, physical=True)).error is None
    # etcd 3.5.1 makes compaction deletes visible to HashKV only after a backend
    # commit (every 100 ms); a defragment commits at once
    # (sent to each side on its own: the response itself is compared in test_defragment_response)
    for st in (pair.sa, pair.sb):
        st.maintenance.Defragment(pb.DefragmentRequest(), timeout=30)
    assert pair.lease_grant(pb.LeaseGrantRequest(ID=5, TTL=60)).error is None


def test_bad_input_cases(pair: Pair) -> None:
    prepare(pair)
    before = pair.hashkv_settled(0)
    failures: list[str] = []
    for name, (fn, expected) in CASES.items():
        try:
            out: Outcome = pair.both(name, fn)
        except Mismatch as exc:  # keep going: report every difference at once
            failures.append(str(exc))
            continue
        got = out.error
        if got != expected:
            failures.append(f"{name}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)
    assert before.response is not None


@pytest.mark.parametrize("name", ["range negative limit", "range end before key", "lease ttl unknown"])
def test_accepted_oddities(pair: Pair, name: str) -> None:
    prepare(pair)
    out = pair.both(name, CASES[name][0])
    assert out.error is None
    if name == "lease ttl unknown":
        assert out.response["TTL"] == "-1"  # an unknown lease has TTL -1, not an error
    elif name == "range end before key":
        assert "kvs" not in out.response  # empty, not an error
    else:
        assert [kv["key"] for kv in out.response["kvs"]] == ["YQ=="]  # negative limit = no limit


def test_rejected_requests_change_nothing(pair: Pair) -> None:
    prepare(pair)
    before = pair.hashkv_settled(0)
    for name, (fn, expected) in CASES.items():
        if expected is not None and not name.startswith(("compact", "lease")):
            pair.both(name, fn)
    after = pair.hashkv_settled(0)
    assert after == before
    assert after.response["header"]["revision"] == "5"


def test_watch_from_compacted_revision(pair: Pair) -> None:
    prepare(pair)
    pair.open_watch(pb.WatchCreateRequest(key=b"a", start_revision=2))
    pair.open_watch(pb.WatchCreateRequest(key=b"a", start_revision=4))
    # watch 0 can only settle by being canceled (its 'until' is never reached)
    pair.compare_watches([10**9, 5])
    wa = pair.watches[0][0].snapshot()
    assert any(r.get("canceled") and r.get("compact_revision") == "4" for r in wa), wa
    events = [ev for r in pair.watches[1][0].snapshot() for ev in r.get("events", [])]
    assert [ev["kv"]["mod_revision"] for ev in events] == ["4", "5"]


def test_grpc_channel_sanity(pair: Pair) -> None:
    # a request on an unknown method is UNIMPLEMENTED on both
    def unknown(s: Stubs) -> Any:
        channel = pair.a.channel() if s is pair.sa else pair.b.channel()
        return channel.unary_unary("/etcdserverpb.KV/Nope")(b"", timeout=T)
    with pytest.raises(grpc.RpcError):
        unknown(pair.sa)
    out = pair.both("unknown method", unknown)
    assert out.error is not None and out.error[0] == "UNIMPLEMENTED"


def test_invalid_sort_target(server) -> None:  # type: ignore[no-untyped-def]
    """An out-of-enum sort_target. etcd 3.5.1 does not validate it and its
    apply path dereferences a nil sorter: the whole server panics (fixed in
    etcd 3.6, etcd-io/etcd#13555, which answers InvalidArgument "etcdserver:
    invalid sort option"). The pair cannot compare a crash, so this runs per
    flavour: etcd must (still) crash, kvetch must answer 3.6's error and live.
    """
    from e2e_support.grpcapi import stubs

    st = stubs(server.channel())
    st.kv.Put(pb.PutRequest(key=b"a", value=b"1"), timeout=T)
    with pytest.raises(grpc.RpcError) as info:
        st.kv.Range(pb.RangeRequest(key=b"a", sort_target=9), timeout=T)
    if server.flavour == "etcd":
        assert server.proc is not None
        assert server.proc.wait(10) != 0
        assert "invalid memory address or nil pointer dereference" in server.log_text()
    else:
        assert (info.value.code().name, info.value.details()) == (INVALID, "etcdserver: invalid sort option")
        assert server.is_running()
        assert st.kv.Range(pb.RangeRequest(key=b"a"), timeout=T).count == 1


def test_txn_ignore_value_after_from_key_delete(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """delete [k, +inf) then put k5 with ignore_value, in one txn.

    etcd 3.5.1 lets it through its duplicate check (from-key ranges are not
    checked), the put then fails during apply ("key not found") and etcd
    panics with "unexpected error during txn". The entry is already in the WAL,
    so every restart replays it and panics again: the member is bricked. This
    runs per flavour and pins both facts for etcd; kvetch must reject the txn
    (InvalidArgument), keep serving and keep the store unchanged.
    """
    from e2e_support.grpcapi import stubs

    st = stubs(server.channel())
    st.kv.Put(pb.PutRequest(key=b"k5", value=b"v"), timeout=T)
    request = pb.TxnRequest(success=[op_del(b"k", b"\0"),
                                     pb.RequestOp(request_put=pb.PutRequest(key=b"k5", ignore_value=True))])
    with pytest.raises(grpc.RpcError) as info:
        st.kv.Txn(request, timeout=T)
    if server.flavour == "etcd":
        assert server.proc is not None
        assert server.proc.wait(10) != 0
        assert "unexpected error during txn" in server.log_text()
        from e2e_support.server import ServerStartError
        with pytest.raises(ServerStartError):
            server.start(timeout=15)
        assert server.log_text().count('"msg":"unexpected error during txn"') >= 2
    else:
        assert info.value.code().name == INVALID, info.value.details()
        assert info.value.details() in ("etcdserver: key not found",
                                        "etcdserver: duplicate key given in txn request")
        assert server.is_running()
        resp = st.kv.Range(pb.RangeRequest(key=b"k5"), timeout=T)
        assert [(kv.key, kv.value) for kv in resp.kvs] == [(b"k5", b"v")]
        assert resp.header.revision == 2


def test_defragment_response(pair: Pair) -> None:
    """etcd 3.5.1 answers Defragment with an empty message: no header at all."""
    out = pair.both("Defragment", lambda s: s.maintenance.Defragment(pb.DefragmentRequest(), timeout=30))
    assert out.response == {}
