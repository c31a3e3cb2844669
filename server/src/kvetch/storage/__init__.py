"""kvetch.storage: the LMDB backend, the MVCC key-value store and the write-ahead log.

* :mod:`.backend` -- LMDB environment and etcd's buckets, defrag, snapshot.
* :mod:`.mvcc` -- revisions, persistent key index, compaction, HashKV.
* :mod:`.wal` -- segmented CRC-framed write-ahead log.
* :mod:`.facade` -- ``open_storage``: the three together for one member.
"""

from kvetch.storage.backend import Backend
from kvetch.storage.facade import Storage, StorageTxn, open_storage
from kvetch.storage.mvcc import HashKVResult, KVReader, KVStore, KVWriter, RangeResult
from kvetch.storage.wal import WAL, Entry, HardState, SnapshotMarker, WALCorruptError

__all__ = [
    "WAL",
    "Backend",
    "Entry",
    "HardState",
    "HashKVResult",
    "KVReader",
    "KVStore",
    "KVWriter",
    "RangeResult",
    "SnapshotMarker",
    "Storage",
    "StorageTxn",
    "WALCorruptError",
    "open_storage",
]
