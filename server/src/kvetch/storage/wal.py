"""Write-ahead log: segmented files of CRC-framed records in ``<data-dir>/member/wal/``.

Segment files are named ``<seq:016x>-<first index:016x>.wal`` (etcd's naming);
each is preallocated to ``segment_size`` bytes (zero filled) so that an
``fdatasync`` only flushes data. A record is::

    u32 length N (little endian) | u8 type | 3 zero bytes | u32 CRC-32C | N data bytes | zero pad to 8

The CRC covers the type byte, the 4 length bytes and the data. A zero header
marks the end of the written part of a segment. Record types and their data
(integers little endian):

* METADATA (1): opaque bytes given at creation (node/cluster identity).
* ENTRY (2): ``u64 index, u64 term, u8 entry type`` then the opaque entry data.
* HARD_STATE (3): ``u64 term, u64 vote, u64 commit``.
* SNAPSHOT (4): ``u64 index, u64 term`` then opaque bytes (e.g. a conf state).

Every segment begins with METADATA, then the latest SNAPSHOT marker and
HARD_STATE (if any), so releasing old segments never loses them.

Opening verifies every record. A bad record (CRC mismatch, impossible length
or type) in the last segment is a torn write when nothing valid follows it
(or a 512-byte sector inside it is all zero, the signature of an unwritten
sector); it is cut off, logged, and the segment zero filled from there. A bad
record anywhere else raises :class:`WALCorruptError`: data is never dropped
silently. After :meth:`WAL.sync` returns, every appended record is durable
(unless ``unsafe_no_fsync``).
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import crc32c

log = logging.getLogger(__name__)

METADATA = 1
ENTRY = 2
HARD_STATE = 3
SNAPSHOT = 4
_TYPES = (METADATA, ENTRY, HARD_STATE, SNAPSHOT)

_HDR = struct.Struct("<IB3xI")
_HDR_SIZE = _HDR.size  # 12
_ENTRY = struct.Struct("<QQB")
_HS = struct.Struct("<QQQ")
_SNAP = struct.Struct("<QQ")
_ZERO_HDR = bytes(_HDR_SIZE)
_SECTOR = 512
_ZERO_SECTOR = bytes(_SECTOR)
DEFAULT_SEGMENT_SIZE = 64 << 20
_FLUSH_AT = 1 << 20
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


class WALCorruptError(Exception):
    """A record that is not a torn tail failed verification."""


class WALLockedError(OSError):
    """Another process has this WAL open (its tail segment is locked)."""


def _lock(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WALLockedError(f"{path} is locked by another process") from None


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry. Unpacks as ``(index, term, data)``; plain tuples of that shape
    are accepted wherever an Entry is."""

    index: int
    term: int
    data: bytes = b""
    type: int = 0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.term, self.data))


@dataclass(frozen=True, slots=True)
class HardState:
    term: int = 0
    vote: int = 0
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMarker:
    index: int
    term: int
    data: bytes = b""


@dataclass
class WALContents:
    metadata: bytes
    snapshot: SnapshotMarker | None
    hard_state: HardState | None
    entries: list[Entry] = field(default_factory=list)


@dataclass
class _Segment:
    seq: int
    first_index: int
    path: str


def _pad(n: int) -> int:
    return (-n) & 7


def encode_record(rtype: int, data: bytes) -> bytes:
    n = len(data)
    crc = crc32c.crc32c(data, crc32c.crc32c(bytes((rtype,)) + n.to_bytes(4, "little")))
    return _HDR.pack(n, rtype, crc) + data + b"\x00" * _pad(_HDR_SIZE + n)


def _entry_payload(e: Entry) -> bytes:
    return _ENTRY.pack(e.index, e.term, e.type) + e.data


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_name(seq: int, index: int) -> str:
    return f"{seq:016x}-{index:016x}.wal"


def _list_segments(d: str) -> list[_Segment]:
    segs = []
    for name in os.listdir(d):
        m = _NAME.match(name)
        if m:
            segs.append(_Segment(int(m.group(1), 16), int(m.group(2), 16), os.path.join(d, name)))
    segs.sort(key=lambda s: s.seq)
    for a, b in itertools.pairwise(segs):
        if b.seq != a.seq + 1:
            raise WALCorruptError(f"missing WAL segment between {a.path} and {b.path}")
    return segs


def _record_ok(buf: bytes | memoryview, off: int, limit: int) -> tuple[int, int, int] | None:
    """(type, data length, next offset) if a valid record starts at ``off``."""
    if off + _HDR_SIZE > limit:
        return None
    n, rtype, crc = _HDR.unpack_from(buf, off)
    end = off + _HDR_SIZE + n
    if rtype not in _TYPES or end > limit:
        return None
    data = buf[off + _HDR_SIZE : end]
    want = crc32c.crc32c(data, crc32c.crc32c(bytes((rtype,)) + n.to_bytes(4, "little")))
    if want != crc:
        return None
    return rtype, n, end + _pad(_HDR_SIZE + n)


class WAL:
    """An open write-ahead log (see the module docstring for the format)."""

    def __init__(
        self,
        dirpath: str,
        *,
        segment_size: int,
        unsafe_no_fsync: bool,
        preallocate: bool,
    ) -> None:
        self.dir = dirpath
        self.segment_size = segment_size
        self.unsafe_no_fsync = unsafe_no_fsync
        self.preallocate = preallocate
        self.metadata = b""
        self.segments: list[_Segment] = []
        self._last_index = 0
        self.hard_state: HardState | None = None
        self.snapshot: SnapshotMarker | None = None
        self.repaired: str | None = None  # description of a torn-tail repair done on open
        self._contents: WALContents | None = None
        self._fd = -1
        self._pos = 0
        self._buf = bytearray()
        self._dirty = False

    # -- opening ------------------------------------------------------------------
    @staticmethod
    def exists(dirpath: str) -> bool:
        return os.path.isdir(dirpath) and any(_NAME.match(n) for n in os.listdir(dirpath))

    @classmethod
    def open(
        cls,
        dirpath: str | os.PathLike[str],
        *,
        metadata: bytes = b"",
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        unsafe_no_fsync: bool = False,
        preallocate: bool = True,
    ) -> WAL:
        """Open the log in ``dirpath`` (creating it with ``metadata`` if it has no segment).

        Verifies every record and repairs a torn tail; the log's contents are
        then available from :meth:`read_all`.
        """
        d = os.fspath(dirpath)
        os.makedirs(d, mode=0o700, exist_ok=True)
        w = cls(d, segment_size=segment_size, unsafe_no_fsync=unsafe_no_fsync, preallocate=preallocate)
        segs = _list_segments(d)
        if not segs:
            w.metadata = metadata
            w._new_segment(0, 1)
            w._contents = WALContents(metadata, None, None, [])
            return w
        # Lock the tail first: nothing (repair included) touches a WAL another process has open.
        fd = os.open(segs[-1].path, os.O_RDWR)
        _lock(fd, segs[-1].path)
        w._fd = fd
        try:
            for name in os.listdir(d):
                if name.endswith(".wal.tmp"):
                    os.unlink(os.path.join(d, name))
            w.segments = segs
            w._load()
        except BaseException:
            os.close(fd)
            w._fd = -1
            raise
        return w

    def _load(self) -> None:
        metadata: bytes | None = None
        snap: SnapshotMarker | None = None
        hs: HardState | None = None
        entries: list[Entry] = []
        first_entry_index = 0  # index of entries[0]
        last = len(self.segments) - 1
        for i, seg in enumerate(self.segments):
            with open(seg.path, "rb") as f:
                buf = f.read()
            mv = memoryview(buf)
            size = len(buf)
            off = 0
            while off < size:
                if buf[off : off + _HDR_SIZE] == _ZERO_HDR or (off + _HDR_SIZE > size and not any(buf[off:])):
                    if len(buf.rstrip(b"\x00")) > off:  # zeros, then data again
                        if i != last:
                            raise WALCorruptError(f"{seg.path}: zeroed record header at offset {off}")
                        self._bad_record(seg, True, buf, off)
                        size = off
                    break
                rec = _record_ok(mv, off, size)
                if rec is None:
                    self._bad_record(seg, i == last, buf, off)
                    size = off
                    break
                rtype, n, nxt = rec
                data = bytes(mv[off + _HDR_SIZE : off + _HDR_SIZE + n])
                if rtype == ENTRY:
                    idx, term, etype = _ENTRY.unpack_from(data)
                    e = Entry(idx, term, data[_ENTRY.size :], etype)
                    if entries and idx <= entries[-1].index:
                        # a later entry overwrites a suffix (raft log truncation)
                        cut = idx - first_entry_index
                        del entries[max(cut, 0) :]
                    elif entries and idx != entries[-1].index + 1:
                        raise WALCorruptError(
                            f"{seg.path}: entry {idx} follows entry {entries[-1].index} (gap) at offset {off}"
                        )
                    if not entries:
                        first_entry_index = idx
                    entries.append(e)
                    self._last_index = idx
                elif rtype == HARD_STATE:
                    hs = HardState(*_HS.unpack_from(data))
                elif rtype == SNAPSHOT:
                    si, st = _SNAP.unpack_from(data)
                    snap = SnapshotMarker(si, st, data[_SNAP.size :])
                    if snap.index > self._last_index:
                        self._last_index = snap.index
                elif rtype == METADATA:
                    if metadata is not None and data != metadata:
                        raise WALCorruptError(f"{seg.path}: metadata differs from the first segment's")
                    metadata = data
                off = nxt
            if i == last:
                self._pos = off
        self.metadata = metadata or b""
        self.snapshot = snap
        self.hard_state = hs
        if snap is not None:
            entries = [e for e in entries if e.index > snap.index]
        self._contents = WALContents(self.metadata, snap, hs, entries)
        if self.preallocate:
            _preallocate(self._fd, self.segment_size)

    def _bad_record(self, seg: _Segment, is_last: bool, buf: bytes, off: int) -> None:
        size = len(buf)
        if not is_last:
            raise WALCorruptError(f"{seg.path}: corrupt record at offset {off}")
        n = _HDR.unpack_from(buf, off)[0] if off + _HDR_SIZE <= size else 0
        data_end = len(buf.rstrip(b"\x00"))
        end = min(off + _HDR_SIZE + n, data_end)
        # A write torn by a crash leaves nothing valid behind it (later records were
        # never synced either), or an unwritten (all-zero) sector inside the record.
        if not _has_zero_sector(buf, off, end):
            for pos in range(off + 8, data_end, 8):
                if _record_ok(buf, pos, size) is not None:
                    raise WALCorruptError(
                        f"{seg.path}: corrupt record at offset {off} followed by a valid record at {pos}"
                    )
        msg = f"{seg.path}: torn record at offset {off} cut off ({size - off} bytes dropped)"
        log.warning("repairing WAL: %s", msg)
        self.repaired = msg
        fd = os.open(seg.path, os.O_RDWR)
        try:
            os.ftruncate(fd, off)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading ------------------------------------------------------------------
    def read_all(self) -> WALContents:
        """What the log holds after its last snapshot marker (the contents read at open).

        Entries with index <= the snapshot marker's index are left out; a
        later entry with an index already seen replaces that entry and all
        after it (as raft log truncation does).
        """
        if self._contents is None:
            raise RuntimeError("the contents read at open were released")
        return self._contents

    # -- writing ------------------------------------------------------------------
    def last_index(self) -> int:
        """Index of the last entry (or snapshot marker) in the log, 0 if none."""
        return self._last_index

    def entries_after(self, index: int) -> list[Entry]:
        """Entries read at open with an index above ``index`` (for replay)."""
        c = self._contents
        if c is None:
            raise RuntimeError("the contents read at open were released")
        return [e for e in c.entries if e.index > index]

    def release_contents(self) -> None:
        """Forget the contents read at open (frees memory after replay)."""
        self._contents = None

    def append(
        self, entries: Iterable[Entry | tuple[int, int, bytes]], hard_state: HardState | None = None
    ) -> None:
        """Buffer entries (and a hard state) for writing; :meth:`sync` makes them durable."""
        buf = self._buf
        enc = encode_record
        pack = _ENTRY.pack
        for e in entries:
            if isinstance(e, Entry):
                index, term, data, etype = e.index, e.term, e.data, e.type
            else:
                index, term, data = e
                etype = 0
            buf += enc(ENTRY, pack(index, term, etype) + data)
            self._last_index = index
        if hard_state is not None:
            buf += encode_record(HARD_STATE, _HS.pack(hard_state.term, hard_state.vote, hard_state.commit))
            self.hard_state = hard_state
        self._dirty = True
        if len(buf) >= _FLUSH_AT:
            self._flush()

    def save_snapshot(self, snap: SnapshotMarker) -> None:
        """Buffer a snapshot marker: :meth:`read_all` after reopening starts after it."""
        self._buf += encode_record(SNAPSHOT, _SNAP.pack(snap.index, snap.term) + snap.data)
        self.snapshot = snap
        if snap.index > self._last_index:
            self._last_index = snap.index
        self._dirty = True

    def _flush(self) -> None:
        if not self._buf:
            return
        if self._fd < 0:
            raise RuntimeError("WAL is closed")
        data = bytes(self._buf)
        self._buf.clear()
        os.pwrite(self._fd, data, self._pos)
        self._pos += len(data)

    def sync(self) -> None:
        """Write buffered records and fsync them (group commit); cuts a new segment when full."""
        self._flush()
        if self._dirty and not self.unsafe_no_fsync:
            os.fdatasync(self._fd)
        self._dirty = False
        if self._pos >= self.segment_size:
            self._cut()

    def _cut(self) -> None:
        """Close the full tail segment and start the next one."""
        os.ftruncate(self._fd, self._pos)
        if not self.unsafe_no_fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._new_segment(self.segments[-1].seq + 1, self._last_index + 1)

    def _new_segment(self, seq: int, first_index: int) -> None:
        name = segment_name(seq, first_index)
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if self.preallocate:
                _preallocate(fd, self.segment_size)
            head = bytearray(encode_record(METADATA, self.metadata))
            if self.snapshot is not None:
                s = self.snapshot
                head += encode_record(SNAPSHOT, _SNAP.pack(s.index, s.term) + s.data)
            if self.hard_state is not None:
                h = self.hard_state
                head += encode_record(HARD_STATE, _HS.pack(h.term, h.vote, h.commit))
            os.pwrite(fd, bytes(head), 0)
            if not self.unsafe_no_fsync:
                os.fsync(fd)
            os.rename(tmp, path)
            if not self.unsafe_no_fsync:
                _fsync_dir(self.dir)
        except BaseException:
            os.close(fd)
            raise
        _lock(fd, path)
        self._fd = fd
        self._pos = len(head)
        self.segments.append(_Segment(seq, first_index, path))

    def release_to(self, index: int) -> int:
        """Delete whole segments holding only entries below ``index``; returns how many.

        Call once the backend has durably applied everything before ``index``
        (after ``Backend.sync``). The tail segment is never deleted.
        """
        n = 0
        while len(self.segments) > 1 and self.segments[1].first_index <= index:
            seg = self.segments.pop(0)
            os.unlink(seg.path)
            n += 1
        if n and not self.unsafe_no_fsync:
            _fsync_dir(self.dir)
        return n

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> WAL:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _preallocate(fd: int, size: int) -> None:
    if os.fstat(fd).st_size >= size:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:
        os.ftruncate(fd, size)


def _has_zero_sector(buf: bytes, start: int, end: int) -> bool:
    """Does [start, end) contain a whole, sector-aligned, all-zero 512-byte block?"""
    s = (start + _SECTOR - 1) // _SECTOR * _SECTOR
    while s + _SECTOR <= end:
        if buf[s : s + _SECTOR] == _ZERO_SECTOR:
            return True
        s += _SECTOR
    return False
