"""MVCC key-value store with etcd's semantics, on the LMDB backend.

Data layout (all in the backend file):

* ``key`` bucket, exactly like etcd: ``main(8, big-endian) b'_' sub(8, big-endian)``
  (plus ``b't'`` for a tombstone) -> marshalled ``mvccpb.KeyValue`` (a
  tombstone's value is ``KeyValue{key}``). HashKV is computed over it, so it
  matches etcd byte for byte.
* ``_kvindex`` (persistent key index; LMDB dupsort, fixed-size values):
  index key -> one 17-byte value per revision of the key still stored:
  ``~main(8) ~sub(8) kind(1)`` where ``~`` is the bitwise complement (so the
  newest revision sorts first) and kind is 0 for a put, 1 for a tombstone.
  The generations of etcd's keyIndex are implied: a tombstone ends one.
* Index keys: a user key of at most :data:`PREFIX` (400) bytes is its own index
  key. A longer key (LMDB keys are limited to 511 bytes, etcd keys are not) is
  stored as ``key[:400] + blake2b-64(key) + seq(2)`` and ``_longkeys`` maps it
  to the full key. Range order stays correct: long keys sharing a 400-byte
  prefix form one contiguous run, which range sorts by full key.
* ``_leasekeys`` (dupsort): 8-byte lease id -> index key of each live key
  attached to the lease, so the lessor rebuilds attachments without a scan.
* ``meta`` bucket: ``scheduledCompactRev`` / ``finishedCompactRev`` as etcd
  stores them (17-byte revision ``main_0``).

Opening a store reads three records (no scan): the last revision in the key
bucket and the two compaction records.

Revisions: :attr:`KVStore.rev` starts at 1 on an empty store;
:attr:`KVStore.compact_rev` is -1 until the first compaction (etcd's value).
Reads at ``rev < compact_rev`` fail with COMPACTED (etcd allows reading at the
compact revision itself), reads above the current revision with FUTURE_REV.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import crc32c

from kvetch.api.mvccpb.kv_pb2 import Event, KeyValue
from kvetch.server import errors
from kvetch.storage.backend import (
    KEY,
    KV_INDEX,
    LEASE_KEYS,
    LONG_KEYS,
    META,
    Backend,
    ReadTxn,
    WriteTxn,
)

log = logging.getLogger(__name__)

PREFIX = 400  # longest user key used directly as an LMDB index key
_MAXU = (1 << 64) - 1
_INVERT = bytes(255 - i for i in range(256))
_Q = struct.Struct(">Q")
_QQ = struct.Struct(">QQ")
_REV = struct.Struct(">Q1sQ")

SCHEDULED_COMPACT_KEY = b"scheduledCompactRev"
FINISHED_COMPACT_KEY = b"finishedCompactRev"

PUT = Event.PUT
DELETE = Event.DELETE


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue]
    count: int  # matches in range, ignoring limit
    rev: int  # the view's current revision (etcd's header revision)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.kvs, self.count, self.rev))


class HashKVResult(NamedTuple):
    hash: int
    compact_rev: int
    hash_rev: int  # the revision hashed up to (etcd >= 3.5.5 HashKVResponse.hash_revision)


# -- encodings -----------------------------------------------------------------
def rev_bytes(main: int, sub: int = 0, tombstone: bool = False) -> bytes:
    """etcd's revision key: 8-byte main, b'_', 8-byte sub, optional b't'."""
    b = _REV.pack(main, b"_", sub)
    return b + b"t" if tombstone else b


def parse_rev(b: bytes) -> tuple[int, int, bool]:
    """(main, sub, tombstone) of a key-bucket key."""
    main, _, sub = _REV.unpack_from(b)
    return main, sub, len(b) == 18 and b[17:18] == b"t"


def _dup(main: int, sub: int, tombstone: bool) -> bytes:
    return _QQ.pack(main, sub).translate(_INVERT) + (b"\x01" if tombstone else b"\x00")


def _dup_revkey(dup: bytes) -> bytes:
    t = dup[:16].translate(_INVERT)
    return t[:8] + b"_" + t[8:] + (b"t" if dup[16] else b"")


def _dup_main(dup: bytes) -> int:
    return _MAXU - _Q.unpack_from(dup)[0]


def _bound(at_rev: int) -> bytes:
    """Smallest index value whose revision has main <= at_rev."""
    return _Q.pack(_MAXU - at_rev) + b"\x00" * 9


def _lease_key(lease: int) -> bytes:
    return _Q.pack(lease & _MAXU)


def _kv_key(value: bytes) -> bytes:
    """The key field of a marshalled KeyValue (field 1 comes first in etcd's and our encoding)."""
    if value[:1] != b"\x0a":
        return KeyValue.FromString(value).key
    n = 0
    shift = 0
    i = 1
    while True:
        c = value[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            break
        shift += 7
    return value[i : i + n]


def _in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    """Watch-style match: None = the key, b"" or b"\\x00" = every key >= start, else [start, end)."""
    if end is None:
        return key == start
    if end == b"" or end == b"\x00":
        return key >= start
    return start <= key < end


# -- index access ----------------------------------------------------------------
def _long_ikey(txn: Any, dbs: ReadTxn, key: bytes, create: bool) -> bytes | None:
    """Index key of a long user key (find it, or allocate one when ``create``)."""
    stem = key[:PREFIX] + hashlib.blake2b(key, digest_size=8).digest()
    cur = txn.cursor(dbs.db(LONG_KEYS))
    seq = -1
    if cur.set_range(stem):
        for k, v in cur.iternext():
            if not k.startswith(stem):
                break
            if v == key:
                return bytes(k)
            seq = max(seq, int.from_bytes(k[len(stem) :], "big"))
    if not create:
        return None
    ikey = stem + (seq + 1).to_bytes(2, "big")
    txn.put(ikey, key, db=dbs.db(LONG_KEYS))
    return ikey


def _ikey(txn: Any, dbs: ReadTxn, key: bytes, create: bool = False) -> bytes | None:
    if len(key) <= PREFIX:
        return key
    return _long_ikey(txn, dbs, key, create)


def _user_key(txn: Any, dbs: ReadTxn, ikey: bytes) -> bytes:
    if len(ikey) <= PREFIX:
        return ikey
    k = txn.get(ikey, db=dbs.db(LONG_KEYS))
    if k is None:
        raise RuntimeError(f"index corrupt: no long key for {ikey[:32]!r}...")
    return bytes(k)


def _look_back(cur: Any, ikey: bytes, bound: bytes) -> bytes | None:
    """The index value of ``ikey`` at the read bound (its newest revision is later), or None
    when the key did not exist then; the cursor is left on ``ikey`` for the next step."""
    if not cur.set_range_dup(ikey, bound):
        cur.set_key(ikey)
        return None
    value: bytes = cur.value()
    return value


def _scan(
    rtx: ReadTxn, key: bytes, end: bytes | None, at_rev: int, want: int
) -> tuple[list[tuple[bytes, bytes, bytes]], int]:
    """Keys live at ``at_rev`` in the range, in key order.

    Returns up to ``want`` (all if ``want <= 0``) ``(user_key, index_key, index_value)``
    triples and the total number of live keys in the range.
    """
    txn = rtx.txn
    if not end:
        ikey = _ikey(txn, rtx, key)
        if ikey is None:
            return [], 0
        cur = txn.cursor(rtx.db(KV_INDEX))
        if not cur.set_range_dup(ikey, _bound(at_rev)):
            return [], 0
        dup = cur.value()
        if dup[16]:
            return [], 0
        return [(key, ikey, dup)], 1

    all_keys = end == b"\x00"
    bound = _bound(at_rev)
    bound8 = bound[:8]
    start_long = len(key) > PREFIX
    cur = txn.cursor(rtx.db(KV_INDEX))
    if not cur.set_range(key[:PREFIX] if start_long else key):
        return [], 0
    longdb = rtx.db(LONG_KEYS)
    out: list[tuple[bytes, bytes, bytes]] = []
    count = 0
    stop_run: bytes | None = None  # a long key >= end was seen in this run
    last_run: bytes | None = None  # run prefix of the last collected long key
    any_long = False
    for ikey, dup0 in cur.iternext_nodup(keys=True, values=True):
        if len(ikey) > PREFIX:
            run = ikey[:PREFIX]
            if stop_run is not None and run != stop_run:
                break
            ukey = txn.get(ikey, db=longdb)
            if ukey is None:
                raise RuntimeError("index corrupt: missing long key")
            if start_long and ukey < key:
                continue
            if not all_keys and ukey >= end:  # type: ignore[operator]
                stop_run = run
                continue
        else:
            if stop_run is not None:
                break
            if not all_keys and ikey >= end:  # type: ignore[operator]
                break
            if start_long and ikey < key:
                continue
            ukey = ikey
            run = None
        dup = dup0
        if dup[:8] < bound8:  # newest revision is after at_rev: look back
            older = _look_back(cur, ikey, bound)
            if older is None:
                continue
            dup = older
        if dup[16]:
            continue
        count += 1
        if want <= 0 or len(out) < want or (run is not None and run == last_run):
            out.append((ukey, ikey, dup))
            if run is not None:
                last_run = run
                any_long = True
    if any_long:
        out.sort(key=lambda t: t[0])
        if want > 0:
            del out[want:]
    return out, count


def _any_live(rtx: ReadTxn, at_rev: int) -> bool:
    """Does any key exist at ``at_rev``? (stops at the first one)"""
    cur = rtx.txn.cursor(rtx.db(KV_INDEX))
    if not cur.first():
        return False
    bound = _bound(at_rev)
    for ikey, dup in cur.iternext_nodup(keys=True, values=True):
        if dup < bound:
            if not cur.set_range_dup(ikey, bound):
                cur.set_key(ikey)
                continue
            dup = cur.value()
        if not dup[16]:
            return True
    return False


def _range(
    rtx: ReadTxn,
    key: bytes,
    end: bytes | None,
    at_rev: int,
    limit: int,
    count_only: bool,
    keys_only: bool,
) -> tuple[list[KeyValue], int]:
    found, count = _scan(rtx, key, end, at_rev, 1 if count_only else limit)
    if count_only:
        return [], count
    txn = rtx.txn
    keydb = rtx.db(KEY)
    kvs = []
    parse = KeyValue.FromString
    for _, _, dup in found:
        v = txn.get(_dup_revkey(dup), db=keydb)
        if v is None:
            raise RuntimeError(f"key bucket missing revision {parse_rev(_dup_revkey(dup))}")
        kv = parse(v)
        if keys_only:
            kv.ClearField("value")
        kvs.append(kv)
    return kvs, count


def _scan_short(rtx: ReadTxn, key: bytes, end: bytes, at_rev: int, want: int) -> tuple[list[bytes], int] | None:
    """:func:`_scan` for a range of short keys, returning only the index values (the hot path
    of large lists). ``None`` when a long key is met: the caller falls back to :func:`_scan`.

    Its loop repeats :func:`_scan`'s per-key steps on purpose: a helper call per key would
    cost about a tenth of a 10,000-key range."""
    if len(key) > PREFIX or len(end) > PREFIX:
        return None
    all_keys = end == b"\x00"
    bound = _bound(at_rev)
    bound8 = bound[:8]
    cur = rtx.txn.cursor(rtx.db(KV_INDEX))
    if not cur.set_range(key):
        return [], 0
    dups: list[bytes] = []
    add = dups.append
    count = 0
    for ikey, dup in cur.iternext_nodup(keys=True, values=True):
        # an index key compares with a short ``end`` as its user key does (it starts with
        # the user key's first PREFIX bytes), so the end test is exact for long keys too
        if not all_keys and ikey >= end:
            break
        if len(ikey) > PREFIX:
            return None
        if dup[:8] < bound8:  # newest revision is after at_rev: look back
            older = _look_back(cur, ikey, bound)
            if older is None:
                continue
            dup = older
        if dup[16]:
            continue
        count += 1
        if want <= 0 or count <= want:
            add(dup)
    return dups, count


class RawKVs:
    """The stored (marshalled) KeyValues of a range, in key order, fetched from the key
    bucket chunk by chunk while the caller encodes them: a large range never holds all of
    its values as separate objects at once. Valid while the read transaction is open."""

    __slots__ = ("_dups", "_rtx")

    def __init__(self, rtx: ReadTxn, dups: list[bytes]) -> None:
        self._rtx = rtx
        self._dups = dups  # index values (revision of each key), puts only

    def __len__(self) -> int:
        return len(self._dups)

    def truncate(self, n: int) -> None:
        del self._dups[n:]

    def chunks(self, size: int = 1024) -> Iterator[list[bytes]]:
        """Lists of up to ``size`` KeyValues; each chunk is one ``getmulti`` (a C loop)."""
        dups = self._dups
        cur = self._rtx.txn.cursor(self._rtx.db(KEY))
        inv = _INVERT
        for start in range(0, len(dups), size):
            # puts only (tombstones were skipped), so no b"t" suffix
            revkeys = [t[:8] + b"_" + t[8:16] for dup in dups[start:start + size] for t in (dup.translate(inv),)]
            pairs = cur.getmulti(revkeys)
            if len(pairs) != len(revkeys):
                have = {k for k, _ in pairs}
                missing = next(k for k in revkeys if k not in have)
                raise RuntimeError(f"key bucket missing revision {parse_rev(missing)}")
            yield [v for _, v in pairs]

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks():
            yield from chunk


def _range_raw(rtx: ReadTxn, key: bytes, end: bytes | None, at_rev: int, limit: int) -> tuple[RawKVs, int]:
    """Like :func:`_range` but yields the stored (marshalled) KeyValue bytes, unparsed.

    A range of short keys is scanned by :func:`_scan_short` (one short Python step
    per key); values are fetched later, in chunks, by :class:`RawKVs`.
    """
    scanned = _scan_short(rtx, key, end, at_rev, limit) if end else None
    if scanned is None:
        found, count = _scan(rtx, key, end, at_rev, limit)
        dups = [f[2] for f in found]
    else:
        dups, count = scanned
    return RawKVs(rtx, dups), count


def _check_rev(rev: int, cur_rev: int, compact_rev: int) -> int:
    if rev > cur_rev:
        raise errors.FUTURE_REV
    if rev <= 0:
        rev = cur_rev
    if rev < compact_rev:
        raise errors.COMPACTED
    return rev


# -- readers and writers -----------------------------------------------------------
class KVReader:
    """A consistent view of the store bound to one LMDB read transaction."""

    def __init__(self, store: KVStore, rev: int = 0) -> None:
        self.store = store
        # Read the committed revision before opening the transaction: the
        # snapshot then holds at least everything up to self.rev.
        self.rev = store._committed_rev
        self.default_rev = rev
        self.rtx: ReadTxn | None = store.backend.begin_read()

    @property
    def txn(self) -> ReadTxn:
        if self.rtx is None:
            raise RuntimeError("reader is closed")
        return self.rtx

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        *,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        at = _check_rev(rev or self.default_rev, self.rev, self.store._compact_rev)
        kvs, count = _range(self.txn, key, end, at, limit, count_only, keys_only)
        return RangeResult(kvs, count, self.rev)

    def range_raw(self, key: bytes, end: bytes | None = None, *, rev: int = 0,
                  limit: int = 0) -> tuple[RawKVs, int, int]:
        """Range returning marshalled KeyValues as stored (hot path: no parse, no copy)."""
        at = _check_rev(rev or self.default_rev, self.rev, self.store._compact_rev)
        raws, count = _range_raw(self.txn, key, end, at, limit)
        return raws, count, self.rev

    def close(self) -> None:
        if self.rtx is not None:
            self.store.backend.end_read(self.rtx)
            self.rtx = None

    def __enter__(self) -> KVReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KVWriter:
    """Changes making up ONE revision (a Put, a DeleteRange or a whole Txn).

    Writes go into ``wtx`` (the caller's backend write transaction, or one
    the writer opened and commits in :meth:`end`). Reads through
    :meth:`range` see the writer's own earlier changes, as in etcd.
    """

    def __init__(self, store: KVStore, wtx: WriteTxn | None) -> None:
        self.store = store
        self._own = wtx is None
        self.wtx: WriteTxn = wtx if wtx is not None else store.backend.begin_write()
        self.txn = self.wtx.txn
        store._hook(self.wtx, self)
        self.begin_rev = store._rev
        self.main = self.begin_rev + 1
        self._keydb = self.wtx.db(KEY)
        self._idxdb = self.wtx.db(KV_INDEX)
        self._leasedb = self.wtx.db(LEASE_KEYS)
        # (new kv or tombstone kv, prev kv, is_delete)
        self.changes: list[tuple[KeyValue, KeyValue | None, bool]] = []
        self._ended = False

    @property
    def rev(self) -> int:
        """The revision reads in this writer see (begin+1 once something changed)."""
        return self.main if self.changes else self.begin_rev

    def read_rev(self) -> int:
        """Same as :attr:`rev` (the header revision of a response built from this writer)."""
        return self.main if self.changes else self.begin_rev

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        *,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        cur = self.rev
        at = _check_rev(rev, cur, self.store._compact_rev)
        kvs, count = _range(self.wtx, key, end, at, limit, count_only, keys_only)
        return RangeResult(kvs, count, cur)

    def put(self, key: bytes, value: bytes, lease: int = 0) -> KeyValue | None:
        """Put ``key``; returns the previous KeyValue (None if the key did not exist)."""
        txn = self.txn
        ikey = key if len(key) <= PREFIX else _long_ikey(txn, self.wtx, key, True)
        assert ikey is not None
        prev = None
        main = self.main
        dup = txn.get(ikey, db=self._idxdb)  # dupsort: the first value = newest revision
        if dup is not None and not dup[16]:
            pv = txn.get(_dup_revkey(dup), db=self._keydb)
            assert pv is not None
            prev = KeyValue.FromString(pv)
            kv = KeyValue(
                key=key,
                value=value,
                create_revision=prev.create_revision,
                mod_revision=main,
                version=prev.version + 1,
                lease=lease,
            )
            old_lease = prev.lease
        else:
            kv = KeyValue(
                key=key, value=value, create_revision=main, mod_revision=main, version=1, lease=lease
            )
            old_lease = 0
        sub = len(self.changes)
        txn.put(_REV.pack(main, b"_", sub), kv.SerializeToString(), db=self._keydb, append=True)
        txn.put(ikey, _dup(main, sub, False), db=self._idxdb)
        if old_lease != lease:
            if old_lease:
                txn.delete(_lease_key(old_lease), ikey, db=self._leasedb)
            if lease:
                txn.put(_lease_key(lease), ikey, db=self._leasedb)
        self.changes.append((kv, prev, False))
        return prev

    def delete_range(self, key: bytes, end: bytes | None = None) -> list[KeyValue]:
        """Delete the keys in range; returns their previous KeyValues in key order."""
        found, _ = _scan(self.wtx, key, end, self.rev, 0)
        if not found:
            return []
        txn = self.txn
        main = self.main
        prevs = []
        for ukey, ikey, dup in found:
            pv = txn.get(_dup_revkey(dup), db=self._keydb)
            assert pv is not None
            prev = KeyValue.FromString(pv)
            sub = len(self.changes)
            tomb = KeyValue(key=ukey)
            txn.put(_REV.pack(main, b"_", sub) + b"t", tomb.SerializeToString(), db=self._keydb, append=True)
            txn.put(ikey, _dup(main, sub, True), db=self._idxdb)
            if prev.lease:
                txn.delete(_lease_key(prev.lease), ikey, db=self._leasedb)
            self.changes.append((tomb, prev, True))
            prevs.append(prev)
        return prevs

    def end(self, *, events: bool = True) -> tuple[int, list[Event]]:
        """Finish the revision: returns (revision, events in change order).

        The revision is unchanged if nothing was written. PUT events carry the
        new KeyValue, DELETE events ``KeyValue{key, mod_revision}``; prev_kv
        is set when the key existed before. ``events=False`` skips building
        them (nobody watches). A writer that opened its own backend
        transaction commits it here.
        """
        if self._ended:
            raise RuntimeError("writer already ended")
        self._ended = True
        out: list[Event] = []
        store = self.store
        rev = self.begin_rev
        if self.changes:
            rev = self.main
            store._rev = rev
            for kv, prev, is_del in self.changes if events else ():
                if is_del:
                    ev = Event(type=DELETE, kv=KeyValue(key=kv.key, mod_revision=rev))
                else:
                    ev = Event(type=PUT, kv=kv)
                if prev is not None:
                    ev.prev_kv.CopyFrom(prev)
                out.append(ev)
        store._writer_done()
        if self._own:
            self.wtx.commit()
        return rev, out

    def abort(self) -> None:
        """Give up a writer that owns its transaction (changes are discarded)."""
        if self._ended:
            return
        self._ended = True
        self.store._writer_done()
        if self._own:
            self.wtx.abort()

    def __enter__(self) -> KVWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._ended:
            return
        if exc_type is None:
            self.end()
        else:
            self.abort()


# -- the store -------------------------------------------------------------------
class KVStore:
    """etcd's MVCC store (revisions, key index, compaction, HashKV) over a :class:`Backend`."""

    def __init__(self, backend: Backend, *, compaction_batch: int = 1000) -> None:
        self.backend = backend
        self.compaction_batch = compaction_batch
        self._hooked: WriteTxn | None = None
        self._writer: KVWriter | None = None
        self._compactor: threading.Thread | None = None
        self._compaction_lock = threading.Lock()
        self._closing = False
        if backend.env.max_key_size() < PREFIX + 10:
            raise RuntimeError(f"LMDB max key size {backend.env.max_key_size()} < {PREFIX + 10}")
        self.reload()

    def reload(self) -> None:
        """(Re)read revision and compaction state from the backend (after open or ``Backend.restore``)."""
        self.wait_compaction()
        backend = self.backend
        with backend.read() as rtx:
            finished = rtx.get(META, FINISHED_COMPACT_KEY)
            scheduled = rtx.get(META, SCHEDULED_COMPACT_KEY)
            cur = rtx.txn.cursor(rtx.db(KEY))
            last = parse_rev(cur.key())[0] if cur.last() else 0
        self._finished_compact = parse_rev(finished)[0] if finished else -1
        sched = parse_rev(scheduled)[0] if scheduled else -1
        self._compact_rev = max(self._finished_compact, sched)
        self._rev = max(1, last, self._compact_rev)
        self._committed_rev = self._rev
        self._committed_compact = self._compact_rev
        if sched > self._finished_compact:
            log.info("resuming scheduled compaction at revision %d", sched)
            self.start_compaction()

    # -- revisions ------------------------------------------------------------
    @property
    def rev(self) -> int:
        """Current revision (including revisions written in a not yet committed transaction)."""
        return self._rev

    @property
    def committed_rev(self) -> int:
        """Revision of the last committed transaction (what new readers see)."""
        return self._committed_rev

    @property
    def compact_rev(self) -> int:
        """Revision of the last compaction, -1 if never compacted (etcd's compactMainRev)."""
        return self._compact_rev

    @property
    def compaction_pending(self) -> bool:
        """A compaction was scheduled but its physical deletion has not finished."""
        return self._compact_rev > self._finished_compact

    def _hook(self, wtx: WriteTxn, writer: KVWriter) -> None:
        active = self._writer
        if active is not None and not active._ended:
            if active.changes:
                raise RuntimeError("a KVWriter with changes was neither ended nor aborted")
            active._ended = True  # abandoned before writing anything (e.g. a failed check)
        self._writer = writer
        if self._hooked is wtx:
            return
        self._hooked = wtx

        def committed() -> None:
            self._committed_rev = self._rev
            self._committed_compact = self._compact_rev
            self._hooked = None

        def aborted() -> None:
            self._rev = self._committed_rev
            self._compact_rev = self._committed_compact
            self._hooked = None
            self._writer = None

        wtx.on_commit(committed)
        wtx.on_abort(aborted)

    def _writer_done(self) -> None:
        self._writer = None

    # -- reads and writes ------------------------------------------------------
    def read(self, rev: int = 0) -> KVReader:
        """A reader over the latest committed state; ``rev`` is its default read revision."""
        return KVReader(self, rev)

    def write(self, wtx: WriteTxn | None = None) -> KVWriter:
        """A writer for one revision, inside ``wtx`` (or its own transaction)."""
        return KVWriter(self, wtx)

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        *,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        """Shortcut: one range in its own read transaction."""
        with self.read() as r:
            return r.range(key, end, rev=rev, limit=limit, count_only=count_only, keys_only=keys_only)

    def put(self, key: bytes, value: bytes, lease: int = 0) -> tuple[int, list[Event]]:
        """Shortcut: one put as its own revision and transaction."""
        w = self.write()
        try:
            w.put(key, value, lease)
        except BaseException:
            w.abort()
            raise
        return w.end()

    def delete_range(self, key: bytes, end: bytes | None = None) -> tuple[int, list[Event]]:
        """Shortcut: one delete-range as its own revision and transaction."""
        w = self.write()
        try:
            w.delete_range(key, end)
        except BaseException:
            w.abort()
            raise
        return w.end()

    # -- watch catch-up ----------------------------------------------------------
    def events(
        self,
        key: bytes,
        end: bytes | None,
        start_rev: int,
        end_rev: int | None = None,
        *,
        prev_kv: bool = False,
    ) -> list[Event]:
        """All changes to keys in range with start_rev <= mod revision <= end_rev, in revision order.

        ``end`` as a watch has it: None = only ``key``, b"" or b"\\x00" = every key
        >= ``key``, else [key, end). DELETE events carry ``KeyValue{key,
        mod_revision}``; with ``prev_kv`` each event gets the key's KeyValue at
        ``mod_revision - 1`` (as :meth:`prev_kv`).
        """
        evs, _ = self.events_chunk(key, end, start_rev, end_rev, max_entries=0, prev_kv=prev_kv)
        return evs

    def events_chunk(
        self,
        key: bytes,
        end: bytes | None,
        start_rev: int,
        end_rev: int | None = None,
        *,
        max_entries: int = 10000,
        prev_kv: bool = False,
    ) -> tuple[list[Event], int]:
        """Bounded :meth:`events`: scans at most about ``max_entries`` changes (all
        keys), stopping at a revision boundary. Returns the events and the next
        revision to continue from (> end_rev when done). Raises COMPACTED if
        ``start_rev < compact_rev`` (etcd's watch rule).
        """
        if start_rev < self._compact_rev:
            raise errors.COMPACTED
        start_rev = max(start_rev, 1)
        hi = self._committed_rev if end_rev is None else min(end_rev, self._committed_rev)
        with self.backend.read() as rtx:
            txn = rtx.txn
            cur = txn.cursor(rtx.db(KEY))
            out: list[Event] = []
            nxt = hi + 1
            if start_rev > hi or not cur.set_range(rev_bytes(start_rev)):
                return out, nxt
            scanned = 0
            last_main = -1
            for k, v in cur.iternext():
                main = _Q.unpack_from(k)[0]
                if main > hi:
                    break
                if max_entries > 0 and scanned >= max_entries and main != last_main:
                    nxt = main
                    break
                scanned += 1
                last_main = main
                ukey = _kv_key(v)
                if not _in_range(ukey, key, end):
                    continue
                if len(k) == 18:
                    ev = Event(type=DELETE, kv=KeyValue(key=ukey, mod_revision=main))
                else:
                    ev = Event(type=PUT, kv=KeyValue.FromString(v))
                if prev_kv:
                    p = self._kv_at(rtx, ukey, main - 1)
                    if p is not None:
                        ev.prev_kv.CopyFrom(p)
                out.append(ev)
            return out, nxt

    def prev_kv(self, key: bytes, rev: int) -> KeyValue | None:
        """The KeyValue of ``key`` at revision ``rev``, as a watch's prev_kv: None if the
        key did not exist then or ``rev`` is below the compact revision (etcd's Range at
        ``mod_revision - 1`` fails there, and its watch then sends no prev_kv)."""
        with self.backend.read() as rtx:
            return self._kv_at(rtx, key, rev)

    def _kv_at(self, rtx: ReadTxn, key: bytes, rev: int) -> KeyValue | None:
        if rev <= 0 or rev < self._compact_rev:
            return None
        found, _ = _scan(rtx, key, None, rev, 1)
        if not found:
            return None
        v = rtx.txn.get(_dup_revkey(found[0][2]), db=rtx.db(KEY))
        return KeyValue.FromString(v) if v is not None else None

    # -- compaction ---------------------------------------------------------------
    def compact(self, rev: int, wtx: WriteTxn | None = None, *, background: bool = False) -> None:
        """Compact away revisions superseded at ``rev`` (etcd's Compact).

        Raises COMPACTED if ``rev <= compact_rev``, FUTURE_REV if ``rev`` is
        above the current revision. The scheduled revision is persisted first
        (in ``wtx`` if given), reads below ``rev`` fail from now on. Without
        ``wtx`` the physical deletion runs to completion before returning.
        With ``wtx`` the caller runs :meth:`run_compaction` after the commit
        (e.g. in a thread; :attr:`compaction_pending` says whether work is
        left), or passes ``background=True`` to have it start in a thread of
        its own once ``wtx`` commits (:meth:`wait_compaction` waits for it).
        A restart resumes an unfinished compaction in such a thread.
        """
        if rev <= self._compact_rev:
            raise errors.COMPACTED
        if rev > self._rev:
            raise errors.FUTURE_REV
        if wtx is None:
            with self.backend.write() as own:
                own.put(META, SCHEDULED_COMPACT_KEY, rev_bytes(rev))
            self._compact_rev = rev
            self._committed_compact = rev
            self.run_compaction()
            return
        prev_compact = self._committed_compact

        def aborted() -> None:
            self._compact_rev = prev_compact

        def committed() -> None:
            self._committed_compact = max(self._committed_compact, rev)
            if background:
                self.start_compaction()

        wtx.on_abort(aborted)
        wtx.on_commit(committed)
        wtx.put(META, SCHEDULED_COMPACT_KEY, rev_bytes(rev))
        self._compact_rev = rev

    def start_compaction(self) -> None:
        """Run pending physical compaction in a background thread (batches of own write txns)."""
        if self._closing or (self._compactor is not None and self._compactor.is_alive()):
            return
        t = threading.Thread(target=self._compaction_thread, name="kvetch-compaction", daemon=True)
        self._compactor = t
        t.start()

    def _compaction_thread(self) -> None:
        try:
            self.run_compaction()
        except Exception:  # logged; a restart resumes the compaction
            log.exception("background compaction failed")

    def wait_compaction(self, timeout: float | None = None) -> bool:
        """Wait for a background compaction; True when none is running any more."""
        t = self._compactor
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def close(self) -> None:
        """Stop background compaction (between batches; a restart resumes it)."""
        self._closing = True
        self.wait_compaction()

    def run_compaction(self, batch: int | None = None, pause: Callable[[], None] | None = None) -> None:
        """Physically delete what the scheduled compaction dropped, in batches.

        Each batch is its own write transaction; ``pause`` (if given) is
        called between batches. Only revisions written since the previous
        finished compaction are visited: older entries are already the one
        kept revision of their key, and a key modified since is found through
        its newer revisions.
        """
        batch = batch or self.compaction_batch
        with self._compaction_lock:
            self._run_compaction(batch, pause)

    def _run_compaction(self, batch: int, pause: Callable[[], None] | None) -> None:
        while not self._closing:
            target = self._committed_compact
            if target <= self._finished_compact:
                return
            with self.backend.write() as wtx:
                sched = wtx.get(META, SCHEDULED_COMPACT_KEY)
                if sched is None or parse_rev(sched)[0] < target:
                    log.warning("compaction at %d is not scheduled in this backend; stopped", target)
                    return
                done = self._compaction_batch(wtx, self._finished_compact, target, batch)
            if done:
                self._finished_compact = target
                log.info("finished compaction at revision %d", target)
                return
            if pause is not None:
                pause()

    def _compaction_batch(self, wtx: WriteTxn, since: int, target: int, batch: int) -> bool:
        txn = wtx.txn
        keydb = wtx.db(KEY)
        idxdb = wtx.db(KV_INDEX)
        progress = wtx.get(META, b"_compactProgress")
        start = progress if progress else rev_bytes(max(since + 1, 0))
        cur = txn.cursor(keydb)
        entries: list[tuple[bytes, bytes]] = []
        if cur.set_range(start):
            for k, v in cur.iternext():
                if _Q.unpack_from(k)[0] > target or len(entries) >= batch:
                    break
                entries.append((bytes(k), _kv_key(v)))
        done = len(entries) < batch
        seen: set[bytes] = set()
        icur = txn.cursor(idxdb)
        bound = _bound(target)
        for _, ukey in entries:
            if ukey in seen:
                continue
            seen.add(ukey)
            ikey = _ikey(txn, wtx, ukey)
            if ikey is None or not icur.set_range_dup(ikey, bound):
                continue
            newest = icur.value()
            doomed = []
            if newest[16]:
                doomed.append(newest)
            while icur.next_dup():
                doomed.append(icur.value())
            for dup in doomed:
                txn.delete(ikey, dup, db=idxdb)
                txn.delete(_dup_revkey(dup), db=keydb)
            if doomed and len(ikey) > PREFIX and txn.get(ikey, db=idxdb) is None:
                txn.delete(ikey, db=wtx.db(LONG_KEYS))
        if done:
            wtx.delete(META, b"_compactProgress")
            wtx.put(META, FINISHED_COMPACT_KEY, rev_bytes(target))
        else:
            last = entries[-1][0]
            m, s, _ = parse_rev(last)
            wtx.put(META, b"_compactProgress", rev_bytes(m, s + 1))
        return done

    # -- hashes ----------------------------------------------------------------------
    def hash_kv(self, rev: int = 0) -> HashKVResult:
        """etcd's HashKV (v3.5.1 ``HashByRev``): CRC-32C (Castagnoli) over b"key" and then
        every (revision key, value) pair of the key bucket with main <= rev, skipping
        revisions at or below the compact revision that compaction at ``rev`` would drop.
        """
        cur_rev = self._committed_rev  # read before the snapshot opens: the snapshot holds it
        with self.backend.read() as rtx:
            compact_rev = self._compact_rev
            if 0 < rev <= compact_rev:
                raise errors.COMPACTED
            if rev > cur_rev:
                raise errors.FUTURE_REV
            if rev <= 0:
                rev = cur_rev
            txn = rtx.txn
            icur = txn.cursor(rtx.db(KV_INDEX))
            bound = _bound(rev)
            h = crc32c.crc32c(b"key")
            any_live: bool | None = None
            cur = txn.cursor(rtx.db(KEY))
            buf: list[bytes] = []
            size = 0
            if cur.first():
                for k, v in cur.iternext():
                    main = _Q.unpack_from(k)[0]
                    if main > rev:
                        break
                    if main <= compact_rev and not self._kept(rtx, icur, bound, k, v):
                        if any_live is None:
                            any_live = _any_live(rtx, rev)
                        if any_live:
                            continue
                    buf.append(k)
                    buf.append(v)
                    size += len(k) + len(v)
                    if size > 1 << 20:
                        h = crc32c.crc32c(b"".join(buf), h)
                        buf.clear()
                        size = 0
            if buf:
                h = crc32c.crc32c(b"".join(buf), h)
            return HashKVResult(h, compact_rev, rev)

    @staticmethod
    def _kept(rtx: ReadTxn, icur: Any, bound: bytes, k: bytes, v: bytes) -> bool:
        """Is revision ``k`` the newest revision of its key at the hash revision, and a put?"""
        if len(k) == 18:
            return False
        ikey = _ikey(rtx.txn, rtx, _kv_key(v))
        if ikey is None or not icur.set_range_dup(ikey, bound):
            return False
        dup = icur.value()
        return not dup[16] and _dup_revkey(dup) == k

    def hash(self) -> int:
        """Hash for Maintenance.Hash (see :meth:`Backend.hash`); pair it with :attr:`committed_rev`."""
        return self.backend.hash()

    # -- leases ----------------------------------------------------------------------
    def lease_keys(self, lease: int, rtx: ReadTxn | None = None) -> list[bytes]:
        """User keys currently attached to ``lease`` (sorted by index key)."""
        if rtx is None:
            with self.backend.read() as r:
                return self.lease_keys(lease, r)
        cur = rtx.txn.cursor(rtx.db(LEASE_KEYS))
        if not cur.set_key(_lease_key(lease)):
            return []
        return [_user_key(rtx.txn, rtx, bytes(ik)) for ik in cur.iternext_dup()]

    def all_lease_keys(self) -> dict[int, list[bytes]]:
        """Every lease id with its attached keys (for the lessor to rebuild on start)."""
        out: dict[int, list[bytes]] = {}
        with self.backend.read() as rtx:
            cur = rtx.txn.cursor(rtx.db(LEASE_KEYS))
            if cur.first():
                for lk, ik in cur.iternext():
                    lid = _Q.unpack(lk)[0]
                    if lid >= 1 << 63:
                        lid -= 1 << 64
                    out.setdefault(lid, []).append(_user_key(rtx.txn, rtx, bytes(ik)))
        return out

    # -- debugging -------------------------------------------------------------------
    def key_revisions(self, key: bytes) -> list[tuple[int, int, bool]]:
        """All stored (main, sub, tombstone) revisions of ``key``, newest first."""
        with self.backend.read() as rtx:
            ikey = _ikey(rtx.txn, rtx, key)
            if ikey is None:
                return []
            cur = rtx.txn.cursor(rtx.db(KV_INDEX))
            if not cur.set_key(ikey):
                return []
            return [parse_rev(_dup_revkey(d)) for d in cur.iternext_dup()]


def iter_kvs(kvs: Iterable[KeyValue]) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs, a convenience for tests and tools."""
    for kv in kvs:
        yield kv.key, kv.value
