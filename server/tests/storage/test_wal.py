"""WAL: framing, reopen, torn-tail repair, corruption detection, segments, snapshot markers."""

from __future__ import annotations

import os
import shutil

import pytest
from kvetch.storage.wal import (
    WAL,
    Entry,
    HardState,
    SnapshotMarker,
    WALCorruptError,
    encode_record,
)


def _segments(d: str) -> list[str]:
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".wal"))


def _fill(w: WAL, start: int, n: int, term: int = 1) -> list[Entry]:
    ents = [Entry(i, term, f"entry-{i}".encode() * (1 + i % 5)) for i in range(start, start + n)]
    w.append(ents)
    w.sync()
    return ents


def _data_end(path: str) -> int:
    """Offset just past the last record (the zero-filled preallocated tail excluded)."""
    with open(path, "rb") as f:
        buf = f.read()
    off = 0
    while off + 12 <= len(buf) and buf[off : off + 12] != bytes(12):
        n = int.from_bytes(buf[off : off + 4], "little")
        off += 12 + n + ((-(12 + n)) & 7)
    return off


def _record_offsets(path: str) -> list[int]:
    with open(path, "rb") as f:
        buf = f.read()
    offs = []
    off = 0
    while off + 12 <= len(buf) and buf[off : off + 12] != bytes(12):
        offs.append(off)
        n = int.from_bytes(buf[off : off + 4], "little")
        off += 12 + n + ((-(12 + n)) & 7)
    return offs


def test_create_append_reopen(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, metadata=b"node-1")
    assert w.read_all().entries == []
    ents = _fill(w, 1, 100)
    w.append([], HardState(term=1, vote=7, commit=100))
    w.append([(101, 1, b"tuple-entry")])
    w.close()

    w2 = WAL.open(d)
    c = w2.read_all()
    assert c.metadata == b"node-1"
    assert c.entries == [*ents, Entry(101, 1, b"tuple-entry")]
    assert c.hard_state == HardState(1, 7, 100)
    assert c.snapshot is None
    assert w2.last_index() == 101
    assert [e.index for e in w2.entries_after(95)] == [96, 97, 98, 99, 100, 101]
    idx, term, data = w2.entries_after(100)[0]
    assert (idx, term, data) == (101, 1, b"tuple-entry")
    assert w2.repaired is None
    w2.close()


def test_unsynced_records_are_not_on_disk_but_synced_ones_are(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    _fill(w, 1, 3)
    w.append([Entry(4, 1, b"buffered")])  # not flushed: a crash now loses it
    crashed = str(tmp_path / "crashed")
    shutil.copytree(d, crashed)  # what the disk holds right now
    w2 = WAL.open(crashed)
    assert [e.index for e in w2.read_all().entries] == [1, 2, 3]
    w2.close()
    w.close()


def test_torn_tail_truncated_record_is_cut(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, preallocate=False)
    ents = _fill(w, 1, 20)
    w.close()
    (seg,) = _segments(d)
    size = os.path.getsize(seg)
    last = _record_offsets(seg)[-1]
    os.truncate(seg, last + (size - last) // 2)  # cut the last record in the middle

    w2 = WAL.open(d, preallocate=False)
    assert w2.repaired is not None
    assert w2.read_all().entries == ents[:-1]
    assert os.path.getsize(seg) == last
    # the log keeps working after the repair
    w2.append([Entry(20, 2, b"again")])
    w2.sync()
    w2.close()
    w3 = WAL.open(d)
    assert w3.read_all().entries == [*ents[:-1], Entry(20, 2, b"again")]
    assert w3.repaired is None
    w3.close()


def test_torn_tail_garbage_last_record_in_preallocated_segment(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    ents = _fill(w, 1, 10)
    w.close()
    (seg,) = _segments(d)
    last = _record_offsets(seg)[-1]
    with open(seg, "r+b") as f:  # the last record's data is half written
        f.seek(last + 14)
        f.write(b"\xff\xee")
    w2 = WAL.open(d)
    assert w2.repaired is not None
    assert w2.read_all().entries == ents[:-1]
    w2.close()


def test_corrupt_middle_record_raises(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    _fill(w, 1, 10)
    w.close()
    (seg,) = _segments(d)
    mid = _record_offsets(seg)[5]
    with open(seg, "r+b") as f:
        f.seek(mid + 20)
        b = f.read(1)
        f.seek(mid + 20)
        f.write(bytes([b[0] ^ 0x01]))
    with pytest.raises(WALCorruptError):
        WAL.open(d)


def test_corrupt_record_in_older_segment_raises(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, segment_size=4096)
    for i in range(20):
        _fill(w, 1 + 10 * i, 10)
    w.close()
    segs = _segments(d)
    assert len(segs) > 2
    first = segs[0]
    last_rec = _record_offsets(first)[-1]  # even the LAST record of a non-tail segment
    with open(first, "r+b") as f:
        f.seek(last_rec + 13)
        f.write(b"\x00\x01")
    with pytest.raises(WALCorruptError):
        WAL.open(d, segment_size=4096)


def test_segments_cut_and_release(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, metadata=b"m", segment_size=4096)
    ents = []
    for i in range(20):
        ents += _fill(w, 1 + i * 10, 10)
        w.append([], HardState(2, 1, ents[-1].index))
        w.sync()
    segs = _segments(d)
    assert len(segs) >= 3
    # names carry sequence and first index
    names = [os.path.basename(s) for s in segs]
    assert names[0] == "0000000000000000-0000000000000001.wal"
    firsts = [int(n.split("-")[1].split(".")[0], 16) for n in names]
    assert firsts == sorted(firsts)

    released = w.release_to(firsts[2])
    assert released == 2
    assert len(_segments(d)) == len(segs) - 2
    w.close()
    w2 = WAL.open(d, segment_size=4096)
    c = w2.read_all()
    assert c.metadata == b"m"
    assert c.hard_state == HardState(2, 1, 200)
    assert c.entries[0].index == firsts[2]
    assert c.entries == ents[firsts[2] - 1 :]
    w2.close()


def test_snapshot_marker_and_overwrite(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    _fill(w, 1, 10)
    w.save_snapshot(SnapshotMarker(6, 1, b"conf"))
    _fill(w, 11, 5)
    # a new leader overwrites the suffix from index 13 on
    w.append([Entry(13, 2, b"x13"), Entry(14, 2, b"x14")])
    w.sync()
    w.close()
    w2 = WAL.open(d)
    c = w2.read_all()
    assert c.snapshot == SnapshotMarker(6, 1, b"conf")
    assert [(e.index, e.term) for e in c.entries] == [
        (7, 1),
        (8, 1),
        (9, 1),
        (10, 1),
        (11, 1),
        (12, 1),
        (13, 2),
        (14, 2),
    ]
    w2.close()


def test_snapshot_marker_survives_release(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, segment_size=2048)
    for i in range(5):
        _fill(w, 1 + 10 * i, 10)
    w.save_snapshot(SnapshotMarker(50, 3))
    w.sync()
    for i in range(6):
        _fill(w, 51 + 10 * i, 10)
    w.release_to(100)
    w.close()
    c = WAL.open(d, segment_size=2048).read_all()
    assert c.snapshot == SnapshotMarker(50, 3)
    assert c.entries[-1].index == 110


def test_unsafe_no_fsync_still_writes(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, unsafe_no_fsync=True)
    ents = _fill(w, 1, 5)
    w.close()
    assert WAL.open(d).read_all().entries == ents


def test_record_framing_is_8_byte_aligned():
    for n in range(0, 40):
        assert len(encode_record(2, b"x" * n)) % 8 == 0


def test_corrupt_length_in_middle_raises(tmp_path):
    """A damaged length field must not make the rest of the log look like a torn tail."""
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    _fill(w, 1, 10)
    w.close()
    (seg,) = _segments(d)
    mid = _record_offsets(seg)[4]
    with open(seg, "r+b") as f:
        f.seek(mid)
        f.write((1 << 30).to_bytes(4, "little"))
    with pytest.raises(WALCorruptError):
        WAL.open(d)


def test_torn_tail_with_unwritten_sector(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    _fill(w, 1, 3)
    big = Entry(4, 1, os.urandom(4000))
    w.append([big])
    w.sync()
    w.close()
    (seg,) = _segments(d)
    off = _record_offsets(seg)[-1]
    sector = (off + 1023) // 512 * 512
    with open(seg, "r+b") as f:  # one sector of the last record never reached the disk
        f.seek(sector)
        f.write(bytes(512))
    w2 = WAL.open(d)
    assert w2.repaired is not None
    assert [e.index for e in w2.read_all().entries] == [1, 2, 3]
    w2.close()


def test_second_process_cannot_open_a_wal_in_use(tmp_path):
    import subprocess
    import sys

    d = str(tmp_path / "wal")
    w = WAL.open(d)
    _fill(w, 1, 3)
    code = (
        "import sys\n"
        "from kvetch.storage.wal import WAL, WALLockedError\n"
        "try:\n"
        "    WAL.open(sys.argv[1])\n"
        "except WALLockedError:\n"
        "    sys.exit(3)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, d]).returncode == 3
    w.close()
    assert subprocess.run([sys.executable, "-c", code, d]).returncode == 0


def test_zeroed_header_then_data_is_not_a_silent_end(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d, segment_size=4096)
    for i in range(10):
        _fill(w, 1 + 10 * i, 10)
    w.close()
    first = _segments(d)[0]
    off = _record_offsets(first)[3]
    with open(first, "r+b") as f:  # a header in an older segment wiped to zeros
        f.seek(off)
        f.write(bytes(12))
    with pytest.raises(WALCorruptError):
        WAL.open(d, segment_size=4096)


def test_entry_gap_is_corruption(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.open(d)
    w.append([Entry(1, 1, b"a"), Entry(2, 1, b"b"), Entry(5, 1, b"gap")])
    w.sync()
    w.close()
    with pytest.raises(WALCorruptError):
        WAL.open(d)
