"""The member's persistent state: backend, MVCC store and WAL behind one small facade.

The apply loop writes through :class:`ApplyTxn`, one backend write
transaction holding the MVCC changes of many entries plus lease, alarm and
meta records and the consistent index, so that a crash leaves either all of
a batch or none of it (and the WAL replays what is missing).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.leasepb import lease_pb2
from kvetch.storage.backend import ALARM, LEASE, MEMBERS, META, Backend, WriteTxn
from kvetch.storage.mvcc import KVStore, KVWriter
from kvetch.storage.wal import DEFAULT_SEGMENT_SIZE, WAL

_U64 = struct.Struct(">Q")
CONSISTENT_INDEX = b"consistent_index"
TERM = b"term"


def lease_key(lease_id: int) -> bytes:
    return _U64.pack(lease_id & 0xFFFFFFFFFFFFFFFF)


class ApplyTxn:
    """One backend write transaction used by the apply loop."""

    def __init__(self, storage: Storage, wtx: WriteTxn) -> None:
        self.storage = storage
        self.wtx = wtx
        self.compacted = False

    def kv_writer(self) -> KVWriter:
        return self.storage.kv.write(self.wtx)

    def set_consistent_index(self, index: int, term: int) -> None:
        self.wtx.put(META, CONSISTENT_INDEX, _U64.pack(index))
        self.wtx.put(META, TERM, _U64.pack(term))

    def put_lease(self, lease: lease_pb2.Lease) -> None:
        self.wtx.put(LEASE, lease_key(lease.ID), lease.SerializeToString())

    def delete_lease(self, lease_id: int) -> None:
        self.wtx.delete(LEASE, lease_key(lease_id))

    def put_alarm(self, alarm: rpc_pb2.AlarmMember) -> None:
        self.wtx.put(ALARM, alarm.SerializeToString(), b"")

    def delete_alarm(self, alarm: rpc_pb2.AlarmMember) -> None:
        self.wtx.delete(ALARM, alarm.SerializeToString())

    def meta_put(self, key: bytes, value: bytes) -> None:
        self.wtx.put(META, key, value)

    def save_members(self, records: dict[str, str]) -> None:
        _save_members(self.wtx, records)

    def compact(self, rev: int) -> None:
        self.storage.kv.compact(rev, self.wtx)
        self.compacted = True


class Storage:
    """Backend + MVCC store + WAL of one data dir."""

    def __init__(self, data_dir: Path, *, map_size: int, unsafe_no_fsync: bool,
                 wal_dir: str | None, log: Any) -> None:
        self.backend = Backend.open_data_dir(data_dir, map_size=map_size)
        self.kv = KVStore(self.backend)
        # WAL segments are preallocated (64 MiB each, as etcd); KVETCH_WAL_SEGMENT_BYTES lowers
        # that where many small members share a disk (the test suite starts hundreds).
        segment = int(os.environ.get("KVETCH_WAL_SEGMENT_BYTES", str(DEFAULT_SEGMENT_SIZE)))
        self.wal = WAL.open(wal_dir or (data_dir / "member" / "wal"), unsafe_no_fsync=unsafe_no_fsync,
                            segment_size=segment)
        if self.wal.repaired:
            log.warn("repaired WAL tail", detail=self.wal.repaired)

    @contextlib.contextmanager
    def write(self) -> Iterator[ApplyTxn]:
        with self.backend.write() as wtx:
            yield ApplyTxn(self, wtx)

    def consistent_index(self) -> tuple[int, int]:
        with self.backend.read() as rtx:
            raw_index = rtx.get(META, CONSISTENT_INDEX)
            raw_term = rtx.get(META, TERM)
        index = _U64.unpack(raw_index)[0] if raw_index else 0
        term = _U64.unpack(raw_term)[0] if raw_term else 0
        return index, term

    def meta_get(self, key: bytes, default: bytes = b"") -> bytes:
        with self.backend.read() as rtx:
            value = rtx.get(META, key)
        return bytes(value) if value is not None else default

    def meta_put(self, key: bytes, value: bytes) -> None:
        with self.backend.write() as wtx:
            wtx.put(META, key, value)

    def load_leases(self) -> list[lease_pb2.Lease]:
        with self.backend.read() as rtx:
            return [lease_pb2.Lease.FromString(bytes(v)) for _, v in rtx.items(LEASE)]

    def lease_keys(self) -> Iterator[tuple[int, bytes]]:
        for lease_id, keys in self.kv.all_lease_keys().items():
            for key in keys:
                yield lease_id, key

    def load_alarms(self) -> list[rpc_pb2.AlarmMember]:
        with self.backend.read() as rtx:
            return [rpc_pb2.AlarmMember.FromString(bytes(k)) for k, _ in rtx.items(ALARM)]

    load_members_were_stored = False

    def load_members(self) -> list[bytes]:
        with self.backend.read() as rtx:
            records = [bytes(v) for _, v in rtx.items(MEMBERS)]
        self.load_members_were_stored = bool(records)
        return records

    def save_members(self, records: dict[str, str]) -> None:
        with self.backend.write() as wtx:
            _save_members(wtx, records)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.wal.sync()
        self.wal.close()
        with contextlib.suppress(Exception):
            self.kv.close()  # waits for a background compaction to stop
        with contextlib.suppress(Exception):
            self.backend.sync()
        self.backend.close()


def _save_members(wtx: WriteTxn, records: dict[str, str]) -> None:
    for stored, _ in list(wtx.items(MEMBERS)):
        if bytes(stored).decode() not in records:
            wtx.delete(MEMBERS, bytes(stored))
    for name, value in records.items():
        wtx.put(MEMBERS, name.encode(), value.encode())


def open_storage(data_dir: Path, *, map_size: int, unsafe_no_fsync: bool,
                 wal_dir: str | None, log: Any) -> Storage:
    return Storage(data_dir, map_size=map_size, unsafe_no_fsync=unsafe_no_fsync, wal_dir=wal_dir, log=log)
