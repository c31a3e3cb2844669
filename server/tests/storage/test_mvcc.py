"""MVCC store: revisions, versions, ranges, writers, compaction, events, leases, long keys, reopen."""

from __future__ import annotations

import random

import pytest
from kvetch.api.mvccpb.kv_pb2 import Event
from kvetch.server import errors
from kvetch.storage.backend import KEY, KV_INDEX, Backend
from kvetch.storage.mvcc import PREFIX, KVStore, parse_rev, rev_bytes


def _keys(res) -> list[bytes]:
    return [kv.key for kv in res.kvs]


def _reopen(store: KVStore) -> KVStore:
    path = store.backend.path
    store.close()
    store.backend.close()
    return KVStore(Backend(path))


def test_empty_store(store):
    assert store.rev == 1
    assert store.compact_rev == -1
    r = store.range(b"a", b"\x00")
    assert (r.kvs, r.count, r.rev) == ([], 0, 1)


def test_put_versions_and_revisions(store):
    rev, evs = store.put(b"foo", b"1")
    assert rev == 2
    assert [e.type for e in evs] == [Event.PUT]
    assert not evs[0].HasField("prev_kv")
    store.put(b"foo", b"2", 5)
    kv = store.range(b"foo").kvs[0]
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease) == (2, 3, 2, b"2", 5)
    _, evs = store.delete_range(b"foo")
    assert evs[0].type == Event.DELETE
    assert evs[0].kv.key == b"foo" and evs[0].kv.mod_revision == 4 and evs[0].kv.version == 0
    assert evs[0].prev_kv.value == b"2"
    store.put(b"foo", b"3")
    kv = store.range(b"foo").kvs[0]
    assert (kv.create_revision, kv.mod_revision, kv.version) == (5, 5, 1)
    # history
    assert store.range(b"foo", rev=2).kvs[0].value == b"1"
    assert store.range(b"foo", rev=3).kvs[0].version == 2
    assert store.range(b"foo", rev=4).kvs == []
    assert store.range(b"foo", rev=1).kvs == []


def test_delete_nothing_keeps_revision(store):
    store.put(b"a", b"1")
    rev, evs = store.delete_range(b"b", b"c")
    assert (rev, evs) == (2, [])
    assert store.rev == 2


def test_range_semantics(store):
    for k in (b"a", b"ab", b"b", b"b\x00", b"c", b"\xff"):
        store.put(k, k)
    assert _keys(store.range(b"a", b"\x00")) == [b"a", b"ab", b"b", b"b\x00", b"c", b"\xff"]
    assert _keys(store.range(b"ab", b"c")) == [b"ab", b"b", b"b\x00"]
    assert _keys(store.range(b"b")) == [b"b"]
    assert _keys(store.range(b"b", b"")) == [b"b"]
    assert _keys(store.range(b"zz")) == []
    assert _keys(store.range(b"c", b"a")) == []
    r = store.range(b"a", b"\x00", limit=2)
    assert (_keys(r), r.count) == ([b"a", b"ab"], 6)
    r = store.range(b"a", b"\x00", count_only=True)
    assert (r.kvs, r.count) == ([], 6)
    r = store.range(b"a", b"b", keys_only=True)
    assert [kv.value for kv in r.kvs] == [b"", b""] and r.kvs[1].version == 1


def test_rev_errors(store):
    for i in range(5):
        store.put(b"k", b"%d" % i)
    with pytest.raises(errors.RPCError) as ei:
        store.range(b"k", rev=7)
    assert ei.value == errors.FUTURE_REV
    store.compact(4)
    with pytest.raises(errors.RPCError) as ei:
        store.range(b"k", rev=3)
    assert ei.value == errors.COMPACTED
    assert store.range(b"k", rev=4).kvs[0].value == b"2"  # reading AT the compact revision works (etcd)
    for bad, err in ((4, errors.COMPACTED), (2, errors.COMPACTED), (7, errors.FUTURE_REV)):
        with pytest.raises(errors.RPCError) as ei:
            store.compact(bad)
        assert ei.value == err


def test_writer_is_one_revision_and_sees_own_writes(store):
    store.put(b"a", b"0")
    w = store.write()
    assert w.rev == 2
    assert w.put(b"a", b"1", 0).value == b"0"
    assert w.rev == 3
    assert w.range(b"a").kvs[0].value == b"1"
    w.put(b"b", b"1", 0)
    prevs = w.delete_range(b"a", b"c")
    assert [p.key for p in prevs] == [b"a", b"b"]
    assert w.range(b"a", b"\x00").count == 0
    w.put(b"a", b"2", 0)
    rev, evs = w.end()
    assert rev == 3
    assert [(e.type, e.kv.key) for e in evs] == [
        (Event.PUT, b"a"),
        (Event.PUT, b"b"),
        (Event.DELETE, b"a"),
        (Event.DELETE, b"b"),
        (Event.PUT, b"a"),
    ]
    kv = store.range(b"a").kvs[0]
    assert (kv.mod_revision, kv.create_revision, kv.version) == (3, 3, 1)
    # sub revisions in the key bucket
    with store.backend.read() as rtx:
        keys = [parse_rev(k) for k, _ in rtx.items(KEY)]
    assert keys == [(2, 0, False), (3, 0, False), (3, 1, False), (3, 2, True), (3, 3, True), (3, 4, False)]
    # the events the watch layer replays from storage are the same
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in store.events(b"a", b"\x00", 3)] == [
        (e.type, e.kv.key, e.kv.mod_revision) for e in evs
    ]


def test_batch_of_revisions_in_one_backend_txn(store):
    with store.backend.write() as wtx:
        for i in range(10):
            w = store.write(wtx)
            w.put(b"k%d" % i, b"v", 0)
            assert w.end()[0] == 2 + i
        assert store.rev == 11
        assert store.committed_rev == 1
        with store.read() as r:  # readers see only committed state
            assert r.rev == 1 and r.range(b"k", b"l").count == 0
    assert store.committed_rev == 11
    assert store.range(b"k", b"l").count == 10


def test_aborted_backend_txn_rolls_back_revision(store):
    store.put(b"a", b"1")
    with pytest.raises(RuntimeError), store.backend.write() as wtx:
        w = store.write(wtx)
        w.put(b"a", b"2", 0)
        w.end()
        store.compact(2, wtx)
        raise RuntimeError("boom")
    assert (store.rev, store.committed_rev, store.compact_rev) == (2, 2, -1)
    assert store.range(b"a").kvs[0].value == b"1"
    store.put(b"a", b"3")
    assert store.range(b"a").kvs[0].mod_revision == 3


def test_end_without_events(store):
    w = store.write()
    w.put(b"a", b"1", 0)
    assert w.end(events=False) == (2, [])
    assert store.range(b"a").kvs[0].mod_revision == 2


def test_abandoned_empty_writer_is_forgotten(store):
    with store.backend.write() as wtx:
        store.write(wtx)  # e.g. a request failing validation before writing anything
        w = store.write(wtx)
        w.put(b"a", b"1", 0)
        assert w.end()[0] == 2


def test_reader_snapshot_isolation(store):
    store.put(b"a", b"1")
    with store.read() as r:
        store.put(b"a", b"2")
        assert r.rev == 2
        assert r.range(b"a").kvs[0].value == b"1"
        with pytest.raises(errors.RPCError):
            r.range(b"a", rev=3)
    assert store.range(b"a").kvs[0].value == b"2"


def test_compaction_keeps_etcd_rules(store):
    store.put(b"a", b"1")  # 2
    store.put(b"a", b"2")  # 3
    store.put(b"b", b"1")  # 4
    store.delete_range(b"b")  # 5
    store.put(b"c", b"1")  # 6
    store.delete_range(b"c")  # 7
    store.put(b"c", b"2")  # 8
    store.compact(5)
    # a: only rev 3 kept; b: put+tombstone at/below 5 -> gone entirely; c untouched
    assert store.key_revisions(b"a") == [(3, 0, False)]
    assert store.key_revisions(b"b") == []
    assert store.key_revisions(b"c") == [(8, 0, False), (7, 0, True), (6, 0, False)]
    with store.backend.read() as rtx:
        revs = [parse_rev(k)[0] for k, _ in rtx.items(KEY)]
    assert revs == [3, 6, 7, 8]
    assert _keys(store.range(b"a", b"\x00", rev=5)) == [b"a"]
    store.compact(7)
    assert store.key_revisions(b"c") == [(8, 0, False)]
    assert store.range(b"c", rev=7).kvs == []
    assert store.range(b"c").kvs[0].version == 1


def test_compaction_persists_and_resumes(tmp_path):
    path = tmp_path / "db"
    s = KVStore(Backend(path))
    for i in range(50):
        s.put(b"k%d" % (i % 5), b"v%d" % i)
    # schedule inside a backend txn but "crash" before the physical deletion runs
    with s.backend.write() as wtx:
        s.compact(40, wtx)
    assert s.compaction_pending
    s.backend.close()
    s2 = KVStore(Backend(path))
    assert s2.compact_rev == 40 and s2.rev == 51
    assert s2.wait_compaction(30)
    assert not s2.compaction_pending
    assert sum(len(s2.key_revisions(b"k%d" % i)) for i in range(5)) == 5 + 11  # kept + newer (41..51)
    s2.close()
    s2.backend.close()
    s3 = KVStore(Backend(path))
    assert (s3.compact_rev, s3.rev, s3.compaction_pending) == (40, 51, False)
    s3.backend.close()


def test_compaction_in_batches_interleaved_with_writes(store):
    for i in range(300):
        store.put(b"k%03d" % (i % 40), b"v%d" % i)
    before = {kv.key: kv.value for kv in store.range(b"k", b"l").kvs}
    h_before = store.hash_kv(0)
    with store.backend.write() as wtx:
        store.compact(250, wtx)
    assert store.compaction_pending
    calls = []

    def write_between_batches() -> None:
        calls.append(1)
        store.put(b"other%d" % len(calls), b"x")

    store.run_compaction(batch=7, pause=write_between_batches)
    assert len(calls) > 10 and not store.compaction_pending
    after = {kv.key: kv.value for kv in store.range(b"k", b"l").kvs}
    assert after == before
    assert store.hash_kv(h_before.hash_rev).hash != 0


def test_events_and_chunks(store):
    for i in range(30):
        store.put(b"k%d" % (i % 3), b"v%d" % i)
    store.delete_range(b"k1")
    evs = store.events(b"k1", None, 2)
    assert [e.kv.mod_revision for e in evs] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 32]
    assert evs[-1].type == Event.DELETE
    evs = store.events(b"k", b"k2", 10, 20, prev_kv=True)
    assert all(e.kv.key in (b"k0", b"k1") for e in evs)
    assert evs[0].prev_kv.mod_revision == evs[0].kv.mod_revision - 3
    all_evs = store.events(b"k", b"", 1)  # watch style: b"" = every key >= start
    assert len(all_evs) == 31
    got, nxt = [], 1
    while nxt <= store.rev:
        chunk, nxt = store.events_chunk(b"k", b"\x00", nxt, max_entries=4)
        got += chunk
    assert [e.kv.mod_revision for e in got] == [e.kv.mod_revision for e in all_evs]
    store.compact(10)
    with pytest.raises(errors.RPCError) as ei:
        store.events(b"k0", None, 9)
    assert ei.value == errors.COMPACTED
    assert store.events(b"k0", None, 10)[0].kv.mod_revision == 11
    assert store.prev_kv(b"k0", 12).value == b"v9"
    assert store.prev_kv(b"k1", 33) is None


def test_lease_index(store):
    store.put(b"a", b"1", 7)
    store.put(b"b", b"1", 7)
    store.put(b"c", b"1", 8)
    long_key = b"L" * 700
    store.put(long_key, b"1", 8)
    assert sorted(store.lease_keys(7)) == [b"a", b"b"]
    store.put(b"a", b"2", 8)  # moved to another lease
    store.put(b"b", b"2", 0)  # detached
    store.delete_range(b"c")
    assert store.lease_keys(7) == []
    assert sorted(store.lease_keys(8)) == sorted([b"a", long_key])
    assert {k: sorted(v) for k, v in store.all_lease_keys().items()} == {8: sorted([b"a", long_key])}
    store.put(b"neg", b"x", -5)
    assert store.all_lease_keys()[-5] == [b"neg"]


def test_long_keys_order_and_history(store):
    rng = random.Random(7)
    base = b"x" * (PREFIX - 3)
    keys = set()
    for _ in range(60):
        n = rng.choice([1, 2, 3, 4, 50, 200, 1200])
        keys.add(base + bytes(rng.choice(b"\x00\x01ab\xff") for _ in range(n)))
    keys |= {b"x" * 10, b"y", base, base + b"ab", b"x" * (PREFIX + 1)}
    for k in keys:
        store.put(k, k[-5:])
    everything = sorted(keys)
    assert _keys(store.range(b"\x00", b"\x00")) == everything
    for _ in range(40):
        a, b = sorted(rng.sample(everything, 2))
        want = [k for k in everything if a <= k < b]
        assert _keys(store.range(a, b)) == want
        r = store.range(a, b, limit=3)
        assert _keys(r) == want[:3] and r.count == len(want)
        assert _keys(store.range(a, b"\x00")) == [k for k in everything if k >= a]
    long_key = max(keys, key=len)
    assert len(long_key) > 1000
    rev, _ = store.put(long_key, b"new")
    assert store.range(long_key).kvs[0].value == b"new"
    assert store.range(long_key, rev=rev - 1).kvs[0].value == long_key[-5:]
    store.delete_range(long_key)
    assert store.range(long_key).kvs == []
    store.compact(store.rev)
    assert store.key_revisions(long_key) == []
    store = _reopen(store)
    assert _keys(store.range(b"\x00", b"\x00")) == [k for k in everything if k != long_key]


def test_reopen_restores_state(store):
    for i in range(100):
        store.put(b"k%02d" % (i % 10), b"v%d" % i, i % 3)
    store.delete_range(b"k05", b"k07")
    store.compact(50)
    h = store.hash_kv(0)
    s2 = _reopen(store)
    assert (s2.rev, s2.compact_rev) == (102, 50)
    assert s2.hash_kv(0) == h
    assert s2.range(b"k", b"l").count == 8
    s2.put(b"k05", b"again")
    assert s2.range(b"k05").kvs[0].mod_revision == 103


class _Counting:
    """Proxy for an LMDB transaction or cursor that counts the calls made through it."""

    def __init__(self, target, counter: list[int]) -> None:
        self._target = target
        self._counter = counter

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*a, **kw):
            self._counter[0] += 1
            out = attr(*a, **kw)
            if name == "cursor":
                return _Counting(out, self._counter)
            if name.startswith("iter"):
                return self._count_items(out)
            return out

        return call

    def _count_items(self, it):
        for item in it:
            self._counter[0] += 1
            yield item


def test_open_does_not_scan_keys(tmp_path, monkeypatch):
    """Opening the store costs the same handful of LMDB operations at 2k and 100k keys."""

    def build(path, n: int) -> None:
        s = KVStore(Backend(path))
        with s.backend.write() as wtx:
            for i in range(n):
                w = s.write(wtx)
                w.put(b"key-%08d" % i, b"v", 0)
                w.end()
        s.compact(n // 2)
        s.backend.close()

    def open_ops(path) -> tuple[int, int]:
        b = Backend(path)
        counter = [0]
        real_begin_read = b.begin_read

        def counting_begin_read():
            rtx = real_begin_read()
            rtx.txn = _Counting(rtx.txn, counter)
            return rtx

        monkeypatch.setattr(b, "begin_read", counting_begin_read)
        s = KVStore(b)
        rev = s.rev
        assert not s.compaction_pending
        b.close()
        return counter[0], rev

    small, big = tmp_path / "small", tmp_path / "big"
    build(small, 2_000)
    build(big, 100_000)
    ops_small, rev_small = open_ops(small)
    ops_big, rev_big = open_ops(big)
    assert (rev_small, rev_big) == (2_001, 100_001)
    assert 0 < ops_small == ops_big <= 10
    with Backend(big) as b, b.read() as rtx:
        assert rtx.txn.stat(rtx.db(KV_INDEX))["entries"] == 100_000


def test_rev_bytes_layout():
    assert rev_bytes(1, 2) == b"\x00" * 7 + b"\x01_" + b"\x00" * 7 + b"\x02"
    assert rev_bytes(3, 0, tombstone=True)[-1:] == b"t"
    assert parse_rev(rev_bytes(2**40, 5, True)) == (2**40, 5, True)


def test_hot_key_history(store):
    vals = {}
    with store.backend.write() as wtx:
        for i in range(5000):
            w = store.write(wtx)
            w.put(b"hot", b"%d" % i, 0)
            vals[w.end()[0]] = b"%d" % i
    rng = random.Random(3)
    for rev in rng.sample(sorted(vals), 200):
        kv = store.range(b"hot", rev=rev).kvs[0]
        assert (kv.value, kv.mod_revision, kv.version) == (vals[rev], rev, rev - 1)
    assert len(store.events(b"hot", None, 4000)) == 1002
    store.compact(4000)
    assert store.key_revisions(b"hot")[-1] == (4000, 0, False)
    assert len(store.key_revisions(b"hot")) == 1002
    assert store.range(b"hot", rev=4000).kvs[0].value == vals[4000]
