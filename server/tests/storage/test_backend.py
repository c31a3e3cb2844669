"""Backend: buckets, transactions, sizes, defrag, snapshot stream, hash; the storage facade."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from kvetch.api.etcdserverpb.rpc_pb2 import AlarmMember
from kvetch.api.leasepb.lease_pb2 import Lease
from kvetch.storage import open_storage
from kvetch.storage.backend import ETCD_BUCKETS, KEY, META, Backend, db_path
from kvetch.storage.mvcc import KVStore


def test_layout_and_buckets(tmp_path):
    b = Backend.open_data_dir(tmp_path)
    assert b.path == db_path(tmp_path) == str(tmp_path / "member" / "snap" / "db")
    assert os.path.isfile(b.path)
    assert set(ETCD_BUCKETS) <= set(b.env.dbs())
    with b.write() as w:
        for name in ETCD_BUCKETS:
            w.put(name, b"k", name)
    b.close()
    b = Backend.open_data_dir(tmp_path)
    with b.read() as r:
        assert [r.get(n, b"k") for n in ETCD_BUCKETS] == list(ETCD_BUCKETS)
    b.close()


def test_write_txn_hooks(backend):
    seen = []
    with backend.write() as w:
        w.on_commit(lambda: seen.append("commit"))
        w.on_abort(lambda: seen.append("abort"))
        w.put(META, b"a", b"1")
    with pytest.raises(ValueError), backend.write() as w:
        w.on_abort(lambda: seen.append("abort2"))
        w.put(META, b"a", b"2")
        raise ValueError
    assert seen == ["commit", "abort2"]
    with backend.read() as r:
        assert r.get(META, b"a") == b"1"


def test_writers_from_threads_serialise(backend):
    def worker() -> None:
        for _ in range(50):
            with backend.write() as w:
                v = int(w.get(META, b"counter") or b"0")
                w.put(META, b"counter", b"%d" % (v + 1))

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with backend.read() as r:
        assert r.get(META, b"counter") == b"200"


def test_defrag_shrinks_after_delete_and_compaction(tmp_path):
    b = Backend.open_data_dir(tmp_path)
    s = KVStore(b)
    val = os.urandom(400)
    with b.write() as wtx:
        for i in range(20_000):
            w = s.write(wtx)
            w.put(b"key-%06d" % (i % 5000), val, 0)
            w.end()
    w = s.write()
    w.delete_range(b"key-", b"key.")
    w.end()
    big = b.size()
    s.compact(s.rev)
    assert b.size_in_use() < big / 10
    assert b.size() >= big  # LMDB never shrinks its file by itself
    b.defrag()
    assert b.size() < big / 10
    assert s.range(b"a", b"\x00").count == 0
    s.put(b"after", b"defrag")  # the store keeps working on the reopened environment
    assert s.range(b"after").kvs[0].value == b"defrag"
    b.close()
    s2 = KVStore(Backend.open_data_dir(tmp_path))
    assert s2.range(b"after").kvs[0].value == b"defrag"
    s2.backend.close()


def test_snapshot_stream_is_a_consistent_copy(tmp_path, backend):
    s = KVStore(backend)
    for i in range(500):
        s.put(b"k%d" % i, os.urandom(100))
    h = s.hash_kv(0)
    snap = backend.snapshot()
    size = snap.size
    s.put(b"after-snapshot", b"x")  # not in the copy
    blobs = list(snap.chunks(sha256_trailer=True))
    snap.close()
    data = b"".join(blobs[:-1])
    assert len(data) == size and size % 4096 == 0
    assert blobs[-1] == hashlib.sha256(data).digest()
    assert (size + 32) % 512 == 32  # what etcdctl 3.5 `snapshot save` checks
    assert all(len(c) <= 32 * 1024 for c in blobs)
    assert not [n for n in os.listdir(os.path.dirname(backend.path)) if "snapshot" in n]
    copy = tmp_path / "restored"
    os.makedirs(copy / "member" / "snap")
    (copy / "member" / "snap" / "db").write_bytes(data)
    b2 = Backend.open_data_dir(copy)
    s2 = KVStore(b2)
    assert s2.hash_kv(0) == h
    assert s2.range(b"after-snapshot").kvs == []
    b2.close()


def test_hash_is_stable_and_ignores_consistent_index(backend):
    s = KVStore(backend)
    s.put(b"a", b"1")
    h1 = backend.hash()
    with backend.write() as w:
        w.put(META, b"consistent_index", b"\x00" * 7 + b"\x05")
        w.put(META, b"term", b"\x00" * 7 + b"\x02")
    assert backend.hash() == h1 == s.hash()
    s.put(b"a", b"2")
    assert backend.hash() != h1
    backend.defrag()
    assert backend.hash() == s.hash()


def test_facade_records(tmp_path):
    st = open_storage(tmp_path, wal_segment_size=1 << 20)
    assert st.consistent_index() == (0, 0)
    with st.write() as tx:
        w = tx.kv_writer()
        w.put(b"a", b"1", 42)
        w.end()
        tx.put_lease(Lease(ID=42, TTL=60))
        tx.put_lease(Lease(ID=43, TTL=5, RemainingTTL=3))
        tx.put_alarm(AlarmMember(memberID=1, alarm=1))
        tx.meta_put(b"storageVersion", b"3.5")
        tx.set_consistent_index(10, 2)
    with st.write() as tx:
        tx.delete_lease(43)
    st.save_members({"a1": '{"id": 161}'})
    st.wal.append([(11, 2, b"entry")])
    st.wal.sync()
    st.close()

    st = open_storage(tmp_path)
    assert st.consistent_index() == (10, 2)
    assert [(le.ID, le.TTL) for le in st.load_leases()] == [(42, 60)]
    assert list(st.lease_keys()) == [(42, b"a")]
    assert [(a.memberID, a.alarm) for a in st.load_alarms()] == [(1, 1)]
    assert st.meta_get(b"storageVersion") == b"3.5"
    assert st.meta_get(b"nope", b"d") == b"d"
    assert st.load_members() == [b'{"id": 161}']
    assert [tuple(e) for e in st.wal.entries_after(10)] == [(11, 2, b"entry")]
    with st.write() as tx:
        tx.compact(2)
    assert st.kv.wait_compaction(30) and not st.kv.compaction_pending
    with st.backend.read() as r:
        assert r.get(META, b"finishedCompactRev") is not None
        assert len(list(r.items(KEY))) == 1
    st.close()


@pytest.mark.parametrize("etcdctl", ["etcdctl", "/usr/bin/etcdctl"])
def test_real_etcdctl_accepts_snapshot_stream(tmp_path, backend, etcdctl):
    """etcdctl 3.5 / 3.4 `snapshot save` takes the stream (data then sha256) and writes the data."""
    import shutil
    import subprocess
    from concurrent import futures

    grpc = pytest.importorskip("grpc")
    from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    binary = shutil.which(etcdctl)
    if binary is None:
        pytest.skip(f"{etcdctl} not installed")
    s = KVStore(backend)
    for i in range(300):
        s.put(b"k%d" % i, os.urandom(200))

    class Maintenance(rpc_pb2_grpc.MaintenanceServicer):
        def Snapshot(self, request, context):
            snap = backend.snapshot()
            try:
                sent = 0
                for blob in snap.chunks(sha256_trailer=True):
                    sent += len(blob)
                    yield rpc_pb2.SnapshotResponse(remaining_bytes=max(0, snap.size - sent), blob=blob)
            finally:
                snap.close()

    server = grpc.server(futures.ThreadPoolExecutor(2))
    rpc_pb2_grpc.add_MaintenanceServicer_to_server(Maintenance(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        out = tmp_path / "snap.db"
        env = dict(os.environ, ETCDCTL_API="3")
        res = subprocess.run(
            [binary, f"--endpoints=127.0.0.1:{port}", "snapshot", "save", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert res.returncode == 0, res.stderr
    finally:
        server.stop(None)
    data = out.read_bytes()
    assert len(data) % 512 == 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    restored = tmp_path / "restored" / "member" / "snap"
    os.makedirs(restored)
    (restored / "db").write_bytes(data[:-32])
    b2 = Backend(restored / "db")
    assert KVStore(b2).hash_kv(0) == s.hash_kv(0)
    b2.close()


def test_restore_from_snapshot_file(tmp_path, backend):
    s = KVStore(backend)
    for i in range(50):
        s.put(b"k%d" % (i % 7), b"v%d" % i)
    s.compact(20)
    h = s.hash_kv(0)
    snap = backend.snapshot()
    saved = tmp_path / "saved.db"
    saved.write_bytes(b"".join(snap.chunks(sha256_trailer=True)))  # as etcdctl saves it
    snap.close()
    for i in range(30):
        s.put(b"later%d" % i, b"x")
    backend.restore(saved)
    s.reload()
    assert (s.rev, s.compact_rev) == (51, 20)
    assert s.hash_kv(0) == h
    assert s.range(b"later0").kvs == []
    s.put(b"after", b"restore")
    assert s.rev == 52
    bad = tmp_path / "bad.db"
    data = bytearray(saved.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        backend.restore(bad)
    assert s.range(b"after").kvs[0].value == b"restore"
