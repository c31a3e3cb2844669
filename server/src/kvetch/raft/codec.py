"""Conversions between the in-memory Raft types and raftpb protobuf messages.

The wire format (peer transport) and persisted format (WAL, snapshots) are
raftpb, as in etcd. ``encode_*`` returns bytes of the raftpb message,
``decode_*`` parses them; ``*_to_pb`` / ``*_from_pb`` work on message objects
for callers that embed them in other protos. Every scalar field is set
explicitly so the encoding carries the zero values as etcd's gogoproto code does.
"""

from __future__ import annotations

from .raftpb import raft_pb2 as pb
from .types import (
    ConfChange,
    ConfState,
    Entry,
    HardState,
    Message,
    Snapshot,
    SnapshotMetadata,
)


def entry_to_pb(e: Entry, out: pb.Entry | None = None) -> pb.Entry:
    p = out if out is not None else pb.Entry()
    p.Term = e.term
    p.Index = e.index
    p.Type = e.type  # type: ignore[assignment]
    p.Data = e.data
    return p


def entry_from_pb(p: pb.Entry) -> Entry:
    return Entry(p.Term, p.Index, p.Type, p.Data)


def conf_state_to_pb(cs: ConfState, out: pb.ConfState | None = None) -> pb.ConfState:
    p = out if out is not None else pb.ConfState()
    p.voters.extend(cs.voters)
    p.learners.extend(cs.learners)
    p.voters_outgoing.extend(cs.voters_outgoing)
    p.learners_next.extend(cs.learners_next)
    p.auto_leave = cs.auto_leave
    return p


def conf_state_from_pb(p: pb.ConfState) -> ConfState:
    return ConfState(list(p.voters), list(p.learners), list(p.voters_outgoing),
                     list(p.learners_next), p.auto_leave)


def snapshot_to_pb(s: Snapshot, out: pb.Snapshot | None = None) -> pb.Snapshot:
    p = out if out is not None else pb.Snapshot()
    p.data = s.data
    md = p.metadata
    conf_state_to_pb(s.metadata.conf_state, md.conf_state)
    md.index = s.metadata.index
    md.term = s.metadata.term
    return p


def snapshot_from_pb(p: pb.Snapshot) -> Snapshot:
    md = p.metadata
    return Snapshot(p.data, SnapshotMetadata(conf_state_from_pb(md.conf_state), md.index, md.term))


def hard_state_to_pb(hs: HardState) -> pb.HardState:
    return pb.HardState(term=hs.term, vote=hs.vote, commit=hs.commit)


def hard_state_from_pb(p: pb.HardState) -> HardState:
    return HardState(p.term, p.vote, p.commit)


def conf_change_to_pb(cc: ConfChange) -> pb.ConfChange:
    return pb.ConfChange(type=cc.type, node_id=cc.node_id, context=cc.context, id=cc.id)  # type: ignore[arg-type]


def conf_change_from_pb(p: pb.ConfChange) -> ConfChange:
    return ConfChange(p.type, p.node_id, p.context, p.id)


def message_to_pb(m: Message) -> pb.Message:
    p = pb.Message()
    p.type = m.type  # type: ignore[assignment]
    p.to = m.to
    setattr(p, "from", m.frm)  # "from" is a Python keyword
    p.term = m.term
    p.logTerm = m.log_term
    p.index = m.index
    for e in m.entries:
        entry_to_pb(e, p.entries.add())
    p.commit = m.commit
    if m.snapshot is not None:
        snapshot_to_pb(m.snapshot, p.snapshot)
    p.reject = m.reject
    p.rejectHint = m.reject_hint
    p.context = m.context
    return p


def message_from_pb(p: pb.Message) -> Message:
    return Message(
        type=p.type,
        to=p.to,
        frm=getattr(p, "from"),
        term=p.term,
        log_term=p.logTerm,
        index=p.index,
        entries=[Entry(e.Term, e.Index, e.Type, e.Data) for e in p.entries],
        commit=p.commit,
        snapshot=snapshot_from_pb(p.snapshot) if p.HasField("snapshot") else None,
        reject=p.reject,
        reject_hint=p.rejectHint,
        context=p.context,
    )


def encode_message(m: Message) -> bytes:
    return message_to_pb(m).SerializeToString()


def decode_message(data: bytes) -> Message:
    p = pb.Message()
    p.ParseFromString(data)
    return message_from_pb(p)


def encode_entry(e: Entry) -> bytes:
    return entry_to_pb(e).SerializeToString()


def decode_entry(data: bytes) -> Entry:
    p = pb.Entry()
    p.ParseFromString(data)
    return entry_from_pb(p)


def encode_hard_state(hs: HardState) -> bytes:
    return hard_state_to_pb(hs).SerializeToString()


def decode_hard_state(data: bytes) -> HardState:
    p = pb.HardState()
    p.ParseFromString(data)
    return hard_state_from_pb(p)


def encode_snapshot(s: Snapshot) -> bytes:
    return snapshot_to_pb(s).SerializeToString()


def decode_snapshot(data: bytes) -> Snapshot:
    p = pb.Snapshot()
    p.ParseFromString(data)
    return snapshot_from_pb(p)


def encode_conf_state(cs: ConfState) -> bytes:
    return conf_state_to_pb(cs).SerializeToString()


def decode_conf_state(data: bytes) -> ConfState:
    p = pb.ConfState()
    p.ParseFromString(data)
    return conf_state_from_pb(p)


def encode_conf_change(cc: ConfChange) -> bytes:
    return conf_change_to_pb(cc).SerializeToString()


def decode_conf_change(data: bytes) -> ConfChange:
    p = pb.ConfChange()
    p.ParseFromString(data)
    return conf_change_from_pb(p)
