"""raftpb wire format, MemoryStorage and RaftLog behaviour."""

from __future__ import annotations

import pytest
from kvetch.raft import (
    Compacted,
    ConfChange,
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    Snapshot,
    SnapshotMetadata,
    Unavailable,
    codec,
)
from kvetch.raft import types as t
from kvetch.raft.log import RaftLog
from kvetch.raft.raftpb import raft_pb2 as pb


def test_raftpb_field_numbers_match_etcd():
    f = pb.Message.DESCRIPTOR.fields_by_name
    assert {n: f[n].number for n in ("type", "to", "from", "term", "logTerm", "index", "entries",
                                     "commit", "snapshot", "reject", "rejectHint", "context")} == {
        "type": 1, "to": 2, "from": 3, "term": 4, "logTerm": 5, "index": 6, "entries": 7,
        "commit": 8, "snapshot": 9, "reject": 10, "rejectHint": 11, "context": 12}
    e = pb.Entry.DESCRIPTOR.fields_by_name
    assert (e["Type"].number, e["Term"].number, e["Index"].number, e["Data"].number) == (1, 2, 3, 4)
    assert pb.MessageType.Value("MsgPreVoteResp") == 18 and pb.ConfChangeType.Value("ConfChangeAddLearnerNode") == 3
    assert pb.DESCRIPTOR.package == "raftpb"
    assert pb.Entry.DESCRIPTOR.fields_by_name["Term"].has_presence  # proto2 optional scalar


def test_hard_state_encoding_is_etcd_bytes():
    # gogoproto always writes non-nullable scalars: term=1, vote=2, commit=3
    assert codec.encode_hard_state(HardState(1, 2, 3)) == bytes([0x08, 1, 0x10, 2, 0x18, 3])
    assert codec.encode_hard_state(HardState()) == bytes([0x08, 0, 0x10, 0, 0x18, 0])


def test_message_roundtrip_through_raftpb():
    snap = Snapshot(b"state", SnapshotMetadata(ConfState([1, 2], [3]), 10, 2))
    m = Message(type=t.MSG_APP, to=2, frm=1, term=3, log_term=2, index=9,
                entries=[Entry(3, 10, t.ENTRY_NORMAL, b"a"), Entry(3, 11, t.ENTRY_CONF_CHANGE, b"b")],
                commit=9, snapshot=snap, reject=True, reject_hint=4, context=b"ctx")
    assert codec.decode_message(codec.encode_message(m)) == m
    plain = Message(type=t.MSG_HEARTBEAT, to=1, frm=2, term=1)
    assert codec.decode_message(codec.encode_message(plain)) == plain


def test_conf_change_snapshot_entry_roundtrip():
    cc = ConfChange(type=t.CONF_ADD_LEARNER_NODE, node_id=7, context=b"m", id=99)
    assert codec.decode_conf_change(codec.encode_conf_change(cc)) == cc
    s = Snapshot(b"x", SnapshotMetadata(ConfState([1]), 5, 1))
    assert codec.decode_snapshot(codec.encode_snapshot(s)) == s
    e = Entry(2, 3, t.ENTRY_NORMAL, b"d")
    assert codec.decode_entry(codec.encode_entry(e)) == e
    assert codec.decode_conf_state(codec.encode_conf_state(ConfState([1, 2], [3]))) == ConfState([1, 2], [3])


def test_memory_storage_append_truncates_conflicts_and_compacts():
    st = MemoryStorage()
    st.append([Entry(1, i) for i in range(1, 6)])
    st.append([Entry(2, 4), Entry(2, 5), Entry(2, 6)])
    assert [(e.index, e.term) for e in st.entries(1, 7, 1 << 30)] == [
        (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    st.create_snapshot(3, ConfState([1]), b"s")
    st.compact(3)
    assert (st.first_index(), st.last_index(), st.term(3)) == (4, 6, 1)
    with pytest.raises(Compacted):
        st.term(2)
    with pytest.raises(Compacted):
        st.entries(3, 5, 1 << 30)
    with pytest.raises(Unavailable):
        st.term(7)
    assert len(st.entries(4, 7, 0)) == 1  # at least one entry even over the size limit


def test_memory_storage_bootstrap_writes_committed_conf_changes():
    st = MemoryStorage()
    st.bootstrap([1, 2], [3])
    ents = st.entries(1, 4, 1 << 30)
    ccs = [codec.decode_conf_change(e.data) for e in ents]
    assert [(c.type, c.node_id) for c in ccs] == [
        (t.CONF_ADD_NODE, 1), (t.CONF_ADD_NODE, 2), (t.CONF_ADD_LEARNER_NODE, 3)]
    assert st.hard_state == HardState(1, 0, 3)
    with pytest.raises(ValueError):
        st.bootstrap([1])


def test_raft_log_unstable_overlay_and_stable_to():
    st = MemoryStorage()
    st.append([Entry(1, 1), Entry(1, 2)])
    log = RaftLog(st)
    log.append([Entry(2, 3), Entry(2, 4)])
    assert (log.last_index(), log.term(4), log.term(2)) == (4, 2, 1)
    assert [e.index for e in log.slice(1, 5, 1 << 62)] == [1, 2, 3, 4]
    log.stable_to(3, 2)
    assert [e.index for e in log.unstable_entries()] == [4]
    log.stable_to(4, 9)  # wrong term: ignored
    assert [e.index for e in log.unstable_entries()] == [4]


def test_raft_log_maybe_append_rejects_mismatch_and_never_truncates_committed():
    st = MemoryStorage()
    st.append([Entry(1, 1), Entry(1, 2), Entry(1, 3)])
    log = RaftLog(st)
    log.committed = 2
    assert log.maybe_append(3, 2, 3, [Entry(2, 4)]) is None
    assert log.maybe_append(3, 1, 9, [Entry(2, 4)]) == 4 and log.committed == 4
    from kvetch.raft import RaftError

    with pytest.raises(RaftError):
        log.maybe_append(1, 1, 4, [Entry(5, 2)])
