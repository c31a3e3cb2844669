"""The backend: one LMDB environment holding every persistent bucket of a member.

The file lives at ``<data-dir>/member/snap/db`` (a single file, ``subdir=False``,
where etcd keeps its bbolt file; LMDB adds ``db-lock`` next to it). Named
sub-databases play etcd's buckets (``key``, ``meta``, ``lease``, ...) plus the
internal index sub-databases owned by :mod:`kvetch.storage.mvcc`.

Durability model
----------------
The WAL carries durability, so by default commits do not fsync
(``sync_commits=False``, LMDB's ``MDB_NOSYNC``); the server calls
:meth:`Backend.sync` periodically (and before releasing WAL segments). What is
crash safe:

* process crash (``kill -9``, exceptions): every committed transaction is in
  the OS page cache and survives; nothing is lost.
* OS crash / power loss with ``sync_commits=False``: transactions committed
  after the last :meth:`sync` may be lost (the WAL replays them, because the
  consistent index is written in the same transaction as the data). LMDB keeps
  its integrity only if the file system preserves write order; otherwise the
  file may be damaged and the member must be restored from a snapshot or a
  peer. Use ``sync_commits=True`` (one ``fdatasync`` per commit, meta page
  not synced: ``MDB_NOMETASYNC``) when that risk is not acceptable.
* :meth:`defrag` writes a complete compacted copy, fsyncs it and atomically
  renames it over the old file; a crash leaves either the old or the new file.

Transactions
------------
``with backend.read() as rtx`` / ``with backend.write() as wtx`` give a
:class:`ReadTxn` / :class:`WriteTxn` (``.txn`` is the LMDB transaction,
``.db(name)`` a bucket handle). A write transaction commits when the ``with``
block exits normally and aborts on an exception. Bucket handles must not be
kept across transactions (:meth:`defrag` reopens the environment).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import crc32c
import lmdb

log = logging.getLogger(__name__)

# etcd's buckets (bbolt bucket names), in etcd's order.
KEY = b"key"
META = b"meta"
LEASE = b"lease"
ALARM = b"alarm"
CLUSTER = b"cluster"
MEMBERS = b"members"
MEMBERS_REMOVED = b"members_removed"
AUTH = b"auth"
AUTH_USERS = b"authUsers"
AUTH_ROLES = b"authRoles"
ETCD_BUCKETS: tuple[bytes, ...] = (
    KEY,
    META,
    LEASE,
    ALARM,
    CLUSTER,
    MEMBERS,
    MEMBERS_REMOVED,
    AUTH,
    AUTH_USERS,
    AUTH_ROLES,
)

# Internal sub-databases (not etcd buckets; derived from / indexing the key bucket).
KV_INDEX = b"_kvindex"  # index key -> revisions (dupsort, fixed 17-byte values)
LONG_KEYS = b"_longkeys"  # index key -> full user key, for keys longer than the prefix
LEASE_KEYS = b"_leasekeys"  # 8-byte lease id -> index key (dupsort)
_DUPSORT = {KV_INDEX: True, LEASE_KEYS: True}
_DUPFIXED = {KV_INDEX: True}
INTERNAL_BUCKETS: tuple[bytes, ...] = (KV_INDEX, LONG_KEYS, LEASE_KEYS)
ALL_BUCKETS = ETCD_BUCKETS + INTERNAL_BUCKETS

DEFAULT_MAP_SIZE = 64 << 30  # address space reserved for the map; the file grows as needed
SNAPSHOT_CHUNK = 32 * 1024


def db_path(data_dir: str | os.PathLike[str]) -> str:
    """Path of the backend file inside a data dir (etcd: ``member/snap/db``)."""
    return os.path.join(os.fspath(data_dir), "member", "snap", "db")


class ReadTxn:
    """A read-only LMDB transaction with access to bucket handles."""

    __slots__ = ("_backend", "_dbs", "txn")

    def __init__(self, backend: Backend, txn: lmdb.Transaction[bytes], dbs: dict[bytes, Any]) -> None:
        self._backend = backend
        self._dbs = dbs
        self.txn = txn

    def db(self, name: bytes) -> Any:
        """The LMDB database handle of bucket ``name``."""
        return self._dbs[name]

    def get(self, bucket: bytes, key: bytes) -> bytes | None:
        return self.txn.get(key, db=self._dbs[bucket])

    def items(self, bucket: bytes) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs of ``bucket`` in key order."""
        cur = self.txn.cursor(self._dbs[bucket])
        if cur.first():
            yield from cur.iternext()


class WriteTxn(ReadTxn):
    """A write transaction; commit/abort hooks let layers keep in-memory state in step."""

    __slots__ = ("_done", "_on_abort", "_on_commit")

    def __init__(self, backend: Backend, txn: lmdb.Transaction[bytes], dbs: dict[bytes, Any]) -> None:
        super().__init__(backend, txn, dbs)
        self._on_commit: list[Callable[[], None]] = []
        self._on_abort: list[Callable[[], None]] = []
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def on_commit(self, cb: Callable[[], None]) -> None:
        """Run ``cb`` right after a successful commit."""
        self._on_commit.append(cb)

    def on_abort(self, cb: Callable[[], None]) -> None:
        """Run ``cb`` after the transaction is aborted (or its commit fails)."""
        self._on_abort.append(cb)

    def put(self, bucket: bytes, key: bytes, value: bytes) -> None:
        self.txn.put(key, value, db=self._dbs[bucket])

    def delete(self, bucket: bytes, key: bytes) -> bool:
        return self.txn.delete(key, db=self._dbs[bucket])

    def commit(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.txn.commit()
        except BaseException:
            for cb in self._on_abort:
                cb()
            raise
        finally:
            self._backend._write_finished()
        for cb in self._on_commit:
            cb()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.txn.abort()
        finally:
            self._backend._write_finished()
            for cb in self._on_abort:
                cb()


@dataclass
class Snapshot:
    """A consistent point-in-time copy of the backend file, streamed in chunks.

    ``size`` is the number of data bytes (a multiple of the 4 KiB page size, so
    the etcd Maintenance.Snapshot stream of ``size`` data bytes followed by the
    32-byte sha256 trailer has ``total % 512 == 32``, which is what
    ``etcdctl snapshot save`` 3.5 checks). The copy is an LMDB file, not bbolt:
    ``etcdutl snapshot status/restore`` cannot read it; ``kvetchutl`` can.
    """

    path: str
    size: int

    def chunks(self, chunk_size: int = SNAPSHOT_CHUNK, *, sha256_trailer: bool = False) -> Iterator[bytes]:
        """The file's bytes in chunks; with ``sha256_trailer`` a final 32-byte sha256 of all data."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            remaining = self.size
            while remaining > 0:
                b = f.read(min(chunk_size, remaining))
                if not b:
                    raise OSError(f"snapshot file {self.path} shorter than expected")
                remaining -= len(b)
                if sha256_trailer:
                    h.update(b)
                yield b
        if sha256_trailer:
            yield h.digest()

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend:
    """The LMDB environment of one member and its buckets."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        sync_commits: bool = False,
        max_readers: int = 1024,
    ) -> None:
        self.path = os.fspath(path)
        self.map_size = map_size
        self.sync_commits = sync_commits
        self.max_readers = max_readers
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        self._cond = threading.Condition()
        self._wlock = threading.Lock()  # one LMDB writer; waiting here releases the GIL
        self._active = 0
        self._exclusive = False
        self._env: lmdb.Environment | None = None
        self._dbs: dict[bytes, Any] = {}
        self._open_env()

    @classmethod
    def open_data_dir(cls, data_dir: str | os.PathLike[str], **kw: Any) -> Backend:
        """Open (creating if needed) the backend of a data dir."""
        return cls(db_path(data_dir), **kw)

    # -- environment ---------------------------------------------------------
    def _open_env(self) -> None:
        env = lmdb.open(
            self.path,
            map_size=self.map_size,
            subdir=False,
            max_dbs=len(ALL_BUCKETS) + 4,
            sync=self.sync_commits,
            metasync=False,
            readahead=False,
            max_readers=self.max_readers,
            mode=0o600,
        )
        dbs: dict[bytes, Any] = {}
        with env.begin(write=True) as txn:
            for name in ALL_BUCKETS:
                dbs[name] = env.open_db(
                    name, txn=txn, dupsort=_DUPSORT.get(name, False), dupfixed=_DUPFIXED.get(name, False)
                )
        self._env = env
        self._dbs = dbs

    @property
    def env(self) -> lmdb.Environment:
        if self._env is None:
            raise RuntimeError("backend is closed")
        return self._env

    def close(self) -> None:
        with self._cond:
            while self._active:
                self._cond.wait()
            if self._env is not None:
                self._env.sync(True)
                self._env.close()
                self._env = None

    @property
    def closed(self) -> bool:
        return self._env is None

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------
    def _txn_started(self) -> None:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._active += 1

    def _txn_finished(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def begin_read(self) -> ReadTxn:
        """A read transaction the caller must finish with :meth:`end_read`."""
        self._txn_started()
        try:
            return ReadTxn(self, self.env.begin(buffers=False), self._dbs)
        except BaseException:
            self._txn_finished()
            raise

    def end_read(self, rtx: ReadTxn) -> None:
        try:
            rtx.txn.abort()
        finally:
            self._txn_finished()

    @contextlib.contextmanager
    def read(self) -> Iterator[ReadTxn]:
        rtx = self.begin_read()
        try:
            yield rtx
        finally:
            self.end_read(rtx)

    def begin_write(self) -> WriteTxn:
        """A write transaction; finish it with ``commit()`` or ``abort()``.

        Only one write transaction exists at a time; other threads wait.
        """
        self._txn_started()
        self._wlock.acquire()
        try:
            return WriteTxn(self, self.env.begin(write=True), self._dbs)
        except BaseException:
            self._write_finished()
            raise

    def _write_finished(self) -> None:
        self._wlock.release()
        self._txn_finished()

    @contextlib.contextmanager
    def write(self) -> Iterator[WriteTxn]:
        wtx = self.begin_write()
        try:
            yield wtx
        except BaseException:
            wtx.abort()
            raise
        wtx.commit()

    @contextlib.contextmanager
    def _exclusive_access(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._active:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    # -- maintenance ---------------------------------------------------------
    def sync(self) -> None:
        """Flush committed transactions to disk (fsync)."""
        self.env.sync(True)

    def size(self) -> int:
        """Size of the backend file in bytes (etcd_mvcc_db_total_size_in_bytes)."""
        return os.stat(self.path).st_size

    def size_in_use(self) -> int:
        """Bytes of pages in use: the pages of every sub-database plus the two meta pages."""
        env = self.env
        st = env.stat()
        psize = st["psize"]
        pages = 2 + st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]
        with self.read() as rtx:
            for db in self._dbs.values():
                s = rtx.txn.stat(db)
                pages += s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"]
        return min(pages * psize, self.size())

    def hash(self) -> int:
        """CRC-32C over every etcd bucket (name, then each key and value in order).

        Like etcd's Maintenance.Hash it skips ``meta/consistent_index`` and
        ``meta/term``; the internal index sub-databases are derived data and
        are not hashed. Stable across defrag and restart, but not equal to
        etcd's value (which hashes bbolt pages).
        """
        h = 0
        with self.read() as rtx:
            for name in ETCD_BUCKETS:
                h = crc32c.crc32c(name, h)
                for k, v in rtx.items(name):
                    if name == META and k in (b"consistent_index", b"term"):
                        continue
                    h = crc32c.crc32c(k, h)
                    h = crc32c.crc32c(v, h)
        return h

    def defrag(self) -> None:
        """Rewrite the file compactly (free pages dropped) and swap it in atomically.

        Waits for open transactions to finish and blocks new ones meanwhile.
        """
        with self._exclusive_access():
            env = self.env
            tmp = self.path + ".defrag"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            before = self.size()
            env.copy(tmp, compact=True)
            os.chmod(tmp, 0o600)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            env.close()
            self._env = None
            os.replace(tmp, self.path)
            _fsync_dir(os.path.dirname(self.path) or ".")
            self._open_env()
            log.info("defragmented backend %s: %d -> %d bytes", self.path, before, self.size())

    def restore(self, src: str | os.PathLike[str]) -> None:
        """Replace the whole backend with the LMDB file ``src`` (a snapshot copy).

        A trailing 32-byte sha256 (as ``etcdctl snapshot save`` writes it) is
        verified and dropped. Atomic like :meth:`defrag`; call
        ``KVStore.reload()`` afterwards.
        """
        with self._exclusive_access():
            tmp = self.path + ".restore"
            with open(src, "rb") as f:
                data = f.read()
            if len(data) % 512 == 32:
                body, digest = data[:-32], data[-32:]
                if hashlib.sha256(body).digest() != digest:
                    raise ValueError(f"{src}: sha256 trailer does not match the snapshot data")
                data = body
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if self._env is not None:
                self._env.close()
                self._env = None
            os.replace(tmp, self.path)
            _fsync_dir(os.path.dirname(self.path) or ".")
            self._open_env()
            log.info("restored backend %s from %s (%d bytes)", self.path, src, len(data))

    def snapshot(self, tmp_dir: str | None = None) -> Snapshot:
        """A consistent point-in-time copy of the backend for Maintenance.Snapshot.

        The copy is taken from one read transaction (writers are not blocked)
        into a temporary file next to the backend. Stream it with
        ``snap.chunks(sha256_trailer=True)`` (32 KiB chunks of ``snap.size``
        data bytes, then the 32-byte sha256 etcd's server appends), and
        ``close()`` it to remove the file.
        """
        return self.snapshot_file(tmp_dir)

    def snapshot_file(self, tmp_dir: str | None = None) -> Snapshot:
        """A consistent point-in-time copy of the whole backend as a :class:`Snapshot` file."""
        d = tmp_dir or os.path.dirname(self.path) or "."
        fd, path = tempfile.mkstemp(prefix="db.snapshot.", dir=d)
        try:
            with self.read() as rtx:
                self.env.copyfd(fd, compact=True, txn=rtx.txn)
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return Snapshot(path=path, size=size)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
