"""One member's storage: backend + MVCC store + WAL, and the small records kept beside them.

``open_storage(data_dir)`` opens ``<data-dir>/member/snap/db`` and
``<data-dir>/member/wal`` (or ``wal_dir``). :class:`StorageTxn` (from
:meth:`Storage.write`) is one backend write transaction in which the server
applies a batch of entries: KV writers (one revision each), lease, alarm and
meta records, and the consistent index, all committed atomically.

Record formats follow etcd's buckets: ``lease`` 8-byte big-endian id ->
marshalled ``leasepb.Lease``; ``alarm`` marshalled ``AlarmMember`` -> empty;
``meta`` ``consistent_index`` / ``term`` -> 8-byte big-endian; ``members``
member id (hex) -> JSON.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from typing import Any

from kvetch.api.etcdserverpb.rpc_pb2 import AlarmMember
from kvetch.api.leasepb.lease_pb2 import Lease
from kvetch.storage.backend import ALARM, LEASE, MEMBERS, META, Backend, WriteTxn
from kvetch.storage.mvcc import KVStore, KVWriter
from kvetch.storage.wal import WAL

_Q = struct.Struct(">Q")
_MASK = (1 << 64) - 1
CONSISTENT_INDEX_KEY = b"consistent_index"
TERM_KEY = b"term"


def lease_key(lease_id: int) -> bytes:
    return _Q.pack(lease_id & _MASK)


class StorageTxn:
    """A backend write transaction with the record helpers the apply loop needs."""

    def __init__(self, storage: Storage, wtx: WriteTxn) -> None:
        self.storage = storage
        self.wtx = wtx

    def kv_writer(self) -> KVWriter:
        """A writer for the next revision inside this transaction."""
        return self.storage.kv.write(self.wtx)

    def compact(self, rev: int) -> None:
        """Schedule compaction at ``rev``; physical deletion runs in background after commit."""
        self.storage.kv.compact(rev, self.wtx, background=True)

    def set_consistent_index(self, index: int, term: int) -> None:
        self.wtx.put(META, CONSISTENT_INDEX_KEY, _Q.pack(index))
        self.wtx.put(META, TERM_KEY, _Q.pack(term))

    def meta_put(self, key: bytes, value: bytes) -> None:
        self.wtx.put(META, key, value)

    def meta_delete(self, key: bytes) -> None:
        self.wtx.delete(META, key)

    def put_lease(self, lease: Lease) -> None:
        self.wtx.put(LEASE, lease_key(lease.ID), lease.SerializeToString())

    def delete_lease(self, lease_id: int) -> None:
        self.wtx.delete(LEASE, lease_key(lease_id))

    def put_alarm(self, alarm: AlarmMember) -> None:
        self.wtx.put(ALARM, alarm.SerializeToString(), b"")

    def delete_alarm(self, alarm: AlarmMember) -> None:
        self.wtx.delete(ALARM, alarm.SerializeToString())


class Storage:
    """The opened storage of one member."""

    def __init__(self, backend: Backend, kv: KVStore, wal: WAL | None) -> None:
        self.backend = backend
        self.kv = kv
        self._wal = wal

    @property
    def wal(self) -> WAL:
        if self._wal is None:
            raise RuntimeError("storage opened without a WAL")
        return self._wal

    @contextlib.contextmanager
    def write(self) -> Iterator[StorageTxn]:
        """One backend write transaction (commits on normal exit, aborts on exception)."""
        with self.backend.write() as wtx:
            yield StorageTxn(self, wtx)

    # -- meta ----------------------------------------------------------------------
    def meta_get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        with self.backend.read() as rtx:
            v = rtx.get(META, key)
        return default if v is None else v

    def meta_put(self, key: bytes, value: bytes) -> None:
        with self.backend.write() as wtx:
            wtx.put(META, key, value)

    def consistent_index(self) -> tuple[int, int]:
        """(consistent index, term) stored with the last applied batch; (0, 0) if none."""
        with self.backend.read() as rtx:
            ci = rtx.get(META, CONSISTENT_INDEX_KEY)
            term = rtx.get(META, TERM_KEY)
        return (_Q.unpack(ci)[0] if ci else 0, _Q.unpack(term)[0] if term else 0)

    # -- leases, alarms, members ------------------------------------------------------
    def load_leases(self) -> list[Lease]:
        with self.backend.read() as rtx:
            return [Lease.FromString(v) for _, v in rtx.items(LEASE)]

    def lease_keys(self) -> Iterator[tuple[int, bytes]]:
        """(lease id, key) for every live key attached to a lease (from the lease index, no key scan)."""
        for lease_id, keys in self.kv.all_lease_keys().items():
            for k in keys:
                yield lease_id, k

    def load_alarms(self) -> list[AlarmMember]:
        with self.backend.read() as rtx:
            return [AlarmMember.FromString(k) for k, _ in rtx.items(ALARM)]

    def load_members(self) -> list[bytes]:
        """The raw member records (JSON) in the members bucket."""
        with self.backend.read() as rtx:
            return [v for _, v in rtx.items(MEMBERS)]

    def save_members(self, records: dict[str, str] | dict[str, bytes]) -> None:
        """Replace the members bucket with ``records`` (member id hex -> JSON)."""
        with self.backend.write() as wtx:
            old = [k for k, _ in wtx.items(MEMBERS)]
            for k in old:
                wtx.delete(MEMBERS, k)
            for mid, rec in records.items():
                wtx.put(MEMBERS, mid.encode(), rec.encode() if isinstance(rec, str) else rec)

    def close(self) -> None:
        self.kv.close()
        if self._wal is not None:
            self._wal.close()
        self.backend.close()


def open_storage(
    data_dir: str | os.PathLike[str],
    *,
    map_size: int | None = None,
    unsafe_no_fsync: bool = False,
    wal_dir: str | os.PathLike[str] | None = None,
    log: Any = None,
    sync_commits: bool = False,
    with_wal: bool = True,
    wal_segment_size: int | None = None,
) -> Storage:
    """Open (creating if needed) a member's backend, MVCC store and WAL."""
    kw: dict[str, Any] = {"sync_commits": sync_commits}
    if map_size:
        kw["map_size"] = map_size
    backend = Backend.open_data_dir(data_dir, **kw)
    try:
        kv = KVStore(backend)
        wal = None
        if with_wal:
            wdir = os.fspath(wal_dir) if wal_dir else os.path.join(os.fspath(data_dir), "member", "wal")
            wkw: dict[str, Any] = {"unsafe_no_fsync": unsafe_no_fsync}
            if wal_segment_size:
                wkw["segment_size"] = wal_segment_size
            wal = WAL.open(wdir, **wkw)
            if wal.repaired and log is not None:
                with contextlib.suppress(Exception):
                    log.warn("repaired torn WAL tail", detail=wal.repaired)
    except BaseException:
        backend.close()
        raise
    return Storage(backend, kv, wal)
