"""Differential test against real etcd 3.5.1: the same seeded writes, compactions and
reads give the same HashKV (hash and compact revision) and the same range results."""

from __future__ import annotations

import os
import random

import pytest
from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.server import errors
from kvetch.storage.mvcc import KVStore

LEASE_ID = 0x1234


def _keys(rng: random.Random) -> bytes:
    return b"k/%02d" % rng.randrange(24)


def _apply_random(rng: random.Random, etcd, store: KVStore) -> str:
    """One random mutation on both sides; returns its kind."""
    r = rng.random()
    if r < 0.55:
        key, value = _keys(rng), b"v%d" % rng.randrange(10**6)
        lease = LEASE_ID if rng.random() < 0.15 else 0
        etcd.kv.Put(rpc_pb2.PutRequest(key=key, value=value, lease=lease))
        store.put(key, value, lease)
        return "put"
    if r < 0.7:
        key = _keys(rng)
        etcd.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))
        store.delete_range(key, None)
        return "delete"
    if r < 0.78:
        a, b = sorted([_keys(rng), _keys(rng)])
        etcd.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=a, range_end=b))
        store.delete_range(a, b)
        return "delete_range"
    if r < 0.93:
        keys = sorted({_keys(rng) for _ in range(rng.randrange(1, 5))})
        vals = [b"t%d" % rng.randrange(1000) for _ in keys]
        ops = [
            rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=k, value=v))
            for k, v in zip(keys, vals, strict=True)
        ]
        dkey = _keys(rng)
        if dkey not in keys:  # etcd rejects a txn deleting a key it also puts
            ops.insert(
                rng.randrange(len(ops) + 1),
                rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=dkey)),
            )
        etcd.kv.Txn(rpc_pb2.TxnRequest(success=ops))
        w = store.write()
        for op in ops:
            if op.HasField("request_put"):
                w.put(op.request_put.key, op.request_put.value, 0)
            else:
                w.delete_range(op.request_delete_range.key, None)
        w.end()
        return "txn"
    # compaction somewhere between the last compaction and now
    lo = max(store.compact_rev + 1, 1)
    hi = store.rev
    if lo > hi:
        return "noop"
    rev = rng.randint(lo, hi)
    etcd.kv.Compact(rpc_pb2.CompactionRequest(revision=rev, physical=True))
    store.compact(rev)
    return "compact"


def _etcd_hashkv(etcd, rev: int) -> tuple[int, int]:
    resp = etcd.maintenance.HashKV(rpc_pb2.HashKVRequest(revision=rev))
    return resp.hash, resp.compact_revision


def _kvs(resp_kvs) -> list[tuple]:
    return [(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in resp_kvs]


def _compare_hashes(rng: random.Random, etcd, store: KVStore) -> None:
    cur = store.rev
    revs = {0}
    lo = max(store.compact_rev + 1, 1)
    if lo <= cur:
        revs.add(cur)
        for _ in range(3):
            revs.add(rng.randint(lo, cur))
    for rev in sorted(revs):
        ours = store.hash_kv(rev)
        assert (ours.hash, ours.compact_rev) == _etcd_hashkv(etcd, rev), f"HashKV at rev {rev}"


def _compare_ranges(rng: random.Random, etcd, store: KVStore) -> None:
    cur = store.rev
    lo = max(store.compact_rev, 1)  # etcd serves reads AT the compact revision
    for rev in {0, cur, lo, rng.randint(lo, cur)}:
        for key, end, limit in (
            (b"k/", b"k0", 0),
            (b"k/05", b"k/15", 3),
            (b"k/07", None, 0),
            (b"\x00", b"\x00", 0),
        ):
            er = etcd.kv.Range(rpc_pb2.RangeRequest(key=key, range_end=end or b"", revision=rev, limit=limit))
            ours = store.range(key, end, rev=rev, limit=limit)
            assert _kvs(ours.kvs) == _kvs(er.kvs), f"range {key!r}..{end!r} at {rev}"
            assert ours.count == er.count
            assert ours.rev == er.header.revision
            ec = etcd.kv.Range(
                rpc_pb2.RangeRequest(key=key, range_end=end or b"", revision=rev, count_only=True)
            )
            assert store.range(key, end, rev=rev, count_only=True).count == ec.count


def test_fresh_store_hash_matches(etcd, store):
    assert store.rev == 1
    assert (store.hash_kv(0).hash, store.hash_kv(0).compact_rev) == _etcd_hashkv(etcd, 0)


# More seeds / longer runs: KVETCH_STORAGE_DIFF_SEEDS=1-50 KVETCH_STORAGE_DIFF_STEPS=2000
def _seeds() -> list[int]:
    spec = os.environ.get("KVETCH_STORAGE_DIFF_SEEDS", "1,2,3")
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


STEPS = int(os.environ.get("KVETCH_STORAGE_DIFF_STEPS", "260"))


@pytest.mark.parametrize("seed", _seeds())
def test_hashkv_and_ranges_match_etcd(etcd, store, seed):
    rng = random.Random(seed)
    etcd.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(ID=LEASE_ID, TTL=3600))
    kinds: dict[str, int] = {}
    for step in range(STEPS):
        kind = _apply_random(rng, etcd, store)
        kinds[kind] = kinds.get(kind, 0) + 1
        if step % 20 == 19 or kind == "compact":
            _compare_hashes(rng, etcd, store)
        if step % 40 == 39:
            _compare_ranges(rng, etcd, store)
    # a final compaction at the current revision, then more writes
    cur = store.rev
    if cur > store.compact_rev:
        etcd.kv.Compact(rpc_pb2.CompactionRequest(revision=cur, physical=True))
        store.compact(cur)
    _compare_hashes(rng, etcd, store)
    for _ in range(30):
        _apply_random(rng, etcd, store)
    _compare_hashes(rng, etcd, store)
    _compare_ranges(rng, etcd, store)
    assert kinds.get("compact", 0) >= 2 and kinds.get("delete", 0) > 5
    # revisions match etcd's header revision
    assert store.rev == etcd.kv.Range(rpc_pb2.RangeRequest(key=b"x")).header.revision


def test_errors_match_etcd(etcd, store):
    import grpc

    for i in range(5):
        etcd.kv.Put(rpc_pb2.PutRequest(key=b"a", value=b"%d" % i))
        store.put(b"a", b"%d" % i)
    etcd.kv.Compact(rpc_pb2.CompactionRequest(revision=4, physical=True))
    store.compact(4)
    for rev, err in ((3, errors.COMPACTED), (100, errors.FUTURE_REV)):
        with pytest.raises(grpc.RpcError) as ei:
            etcd.kv.Range(rpc_pb2.RangeRequest(key=b"a", revision=rev))
        with pytest.raises(errors.RPCError) as oi:
            store.range(b"a", rev=rev)
        assert oi.value == err
        assert (ei.value.code(), ei.value.details()) == (err.code, err.message)
    # HashKV at the compact revision itself is compacted, a range there is not
    with pytest.raises(grpc.RpcError):
        etcd.maintenance.HashKV(rpc_pb2.HashKVRequest(revision=4))
    with pytest.raises(errors.RPCError):
        store.hash_kv(4)
    assert (
        store.range(b"a", rev=4).kvs[0].value
        == etcd.kv.Range(rpc_pb2.RangeRequest(key=b"a", revision=4)).kvs[0].value
    )
    for rev, err in ((4, errors.COMPACTED), (3, errors.COMPACTED), (100, errors.FUTURE_REV)):
        with pytest.raises(grpc.RpcError) as ei:
            etcd.kv.Compact(rpc_pb2.CompactionRequest(revision=rev))
        with pytest.raises(errors.RPCError) as oi:
            store.compact(rev)
        assert oi.value == err
        assert (ei.value.code(), ei.value.details()) == (err.code, err.message)


def _both_put(etcd, store, key: bytes, value: bytes) -> None:
    etcd.kv.Put(rpc_pb2.PutRequest(key=key, value=value))
    store.put(key, value)


def _both_delete(etcd, store, key: bytes, end: bytes | None = None) -> None:
    etcd.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key, range_end=end or b""))
    store.delete_range(key, end)


def _both_compact(etcd, store, rev: int) -> None:
    etcd.kv.Compact(rpc_pb2.CompactionRequest(revision=rev, physical=True))
    store.compact(rev)


def _assert_hashes(etcd, store) -> None:
    for rev in range(max(store.compact_rev + 1, 1), store.rev + 1):
        ours = store.hash_kv(rev)
        assert (ours.hash, ours.compact_rev) == _etcd_hashkv(etcd, rev), f"HashKV at {rev}"
        assert ours.hash_rev == rev
    assert store.hash_kv(0)[:2] == _etcd_hashkv(etcd, 0)


def test_hashkv_when_no_key_is_live(etcd, store):
    """etcd only filters compacted revisions when some key is live at the hash revision."""
    _both_put(etcd, store, b"a", b"1")  # 2
    _both_put(etcd, store, b"b", b"1")  # 3
    _both_put(etcd, store, b"a", b"2")  # 4
    _both_compact(etcd, store, 3)
    _both_delete(etcd, store, b"a", b"c")  # 5: nothing live any more
    _assert_hashes(etcd, store)
    _both_put(etcd, store, b"c", b"1")  # 6
    _both_put(etcd, store, b"a", b"3")  # 7
    _assert_hashes(etcd, store)
    _both_compact(etcd, store, 5)
    _assert_hashes(etcd, store)
    _both_delete(etcd, store, b"\x00", b"\x00")  # 8
    _both_compact(etcd, store, 8)
    _assert_hashes(etcd, store)


def test_hashkv_long_keys_and_pending_compaction(etcd, store):
    rng = random.Random(11)
    base = b"p" * 600
    keys = [base + bytes([rng.randrange(256) for _ in range(rng.randrange(1, 40))]) for _ in range(20)]
    keys += [b"p" * n for n in (1, 399, 400, 401, 511, 512)]
    for i in range(120):
        k = rng.choice(keys)
        if rng.random() < 0.8:
            _both_put(etcd, store, k, b"%d" % i)
        else:
            _both_delete(etcd, store, k)
    for key, end in ((b"p", b"q"), (base, base + b"\x80"), (b"p" * 400, b"\x00")):
        er = etcd.kv.Range(rpc_pb2.RangeRequest(key=key, range_end=end))
        ours = store.range(key, end)
        assert _kvs(ours.kvs) == _kvs(er.kvs)
        assert ours.count == er.count
    # compaction scheduled but not yet physically done: same hash as after it
    rev = store.rev - 30
    etcd.kv.Compact(rpc_pb2.CompactionRequest(revision=rev, physical=True))
    with store.backend.write() as wtx:
        store.compact(rev, wtx)
    assert store.compaction_pending
    pending = [store.hash_kv(r) for r in range(rev + 1, store.rev + 1)]
    store.run_compaction()
    done = [store.hash_kv(r) for r in range(rev + 1, store.rev + 1)]
    assert pending == done
    _assert_hashes(etcd, store)


def _etcd_watch_events(etcd, key: bytes, end: bytes, start_rev: int, until_rev: int) -> list:
    """Events etcd's watch delivers from start_rev (with prev_kv) up to until_rev."""
    import queue
    import threading

    reqs: queue.Queue = queue.Queue()
    reqs.put(
        rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(
                key=key, range_end=end, start_revision=start_rev, prev_kv=True
            )
        )
    )
    done = threading.Event()

    def requests():
        yield reqs.get()
        done.wait(30)

    events: list = []
    stream = etcd.watch.Watch(requests(), timeout=30)
    try:
        for resp in stream:
            assert not resp.canceled, resp
            events.extend(resp.events)
            if events and events[-1].kv.mod_revision >= until_rev:
                break
            if resp.header.revision >= until_rev and not resp.events and not resp.created:
                break
    finally:
        done.set()
        stream.cancel()
    return events


def _ev(e) -> tuple:
    p = e.prev_kv if e.HasField("prev_kv") else None
    return (e.type, *_kvs([e.kv])[0], *(_kvs([p])[0] if p is not None else ()))


def test_watch_catch_up_events_match_etcd(etcd, store):
    rng = random.Random(5)
    etcd.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(ID=LEASE_ID, TTL=3600))
    for _ in range(150):
        _apply_random(rng, etcd, store)
    assert store.compact_rev > 1
    start = max(store.compact_rev, 1)
    ours = store.events(b"k/", b"k0", start, prev_kv=True)
    theirs = _etcd_watch_events(etcd, b"k/", b"k0", start, store.rev)
    assert ours and [_ev(e) for e in ours] == [_ev(e) for e in theirs]
