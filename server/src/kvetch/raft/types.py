"""Plain in-memory Raft value types (entries, messages, states, snapshots).

These mirror etcd's raftpb messages field for field but are slotted Python
classes, because building protobuf objects on every step is slow. The wire and
persisted form is raftpb: see :mod:`kvetch.raft.codec` for the conversions.
Message types and enum values are plain ints with the raftpb numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NONE = 0  # "no node": the id 0 is never a valid node id

# EntryType
ENTRY_NORMAL = 0
ENTRY_CONF_CHANGE = 1
ENTRY_CONF_CHANGE_V2 = 2

# MessageType (raftpb numbers)
MSG_HUP = 0
MSG_BEAT = 1
MSG_PROP = 2
MSG_APP = 3
MSG_APP_RESP = 4
MSG_VOTE = 5
MSG_VOTE_RESP = 6
MSG_SNAP = 7
MSG_HEARTBEAT = 8
MSG_HEARTBEAT_RESP = 9
MSG_UNREACHABLE = 10
MSG_SNAP_STATUS = 11
MSG_CHECK_QUORUM = 12
MSG_TRANSFER_LEADER = 13
MSG_TIMEOUT_NOW = 14
MSG_READ_INDEX = 15
MSG_READ_INDEX_RESP = 16
MSG_PRE_VOTE = 17
MSG_PRE_VOTE_RESP = 18

MSG_NAMES = {
    0: "MsgHup", 1: "MsgBeat", 2: "MsgProp", 3: "MsgApp", 4: "MsgAppResp", 5: "MsgVote",
    6: "MsgVoteResp", 7: "MsgSnap", 8: "MsgHeartbeat", 9: "MsgHeartbeatResp",
    10: "MsgUnreachable", 11: "MsgSnapStatus", 12: "MsgCheckQuorum", 13: "MsgTransferLeader",
    14: "MsgTimeoutNow", 15: "MsgReadIndex", 16: "MsgReadIndexResp", 17: "MsgPreVote",
    18: "MsgPreVoteResp",
}

#: messages generated and consumed inside one node, never sent on the wire
LOCAL_MSGS = frozenset({MSG_HUP, MSG_BEAT, MSG_UNREACHABLE, MSG_SNAP_STATUS, MSG_CHECK_QUORUM})
#: messages answered by the peer (useful for transports that track liveness)
RESPONSE_MSGS = frozenset(
    {MSG_APP_RESP, MSG_VOTE_RESP, MSG_HEARTBEAT_RESP, MSG_READ_INDEX_RESP, MSG_PRE_VOTE_RESP}
)

# ConfChangeType
CONF_ADD_NODE = 0
CONF_REMOVE_NODE = 1
CONF_UPDATE_NODE = 2
CONF_ADD_LEARNER_NODE = 3

# Node roles (StateType in etcd)
FOLLOWER = "StateFollower"
CANDIDATE = "StateCandidate"
LEADER = "StateLeader"
PRE_CANDIDATE = "StatePreCandidate"


@dataclass(slots=True)
class Entry:
    term: int = 0
    index: int = 0
    type: int = ENTRY_NORMAL
    data: bytes = b""


@dataclass(slots=True)
class ConfState:
    voters: list[int] = field(default_factory=list)
    learners: list[int] = field(default_factory=list)
    # joint consensus is not implemented; kept for the raftpb layout
    voters_outgoing: list[int] = field(default_factory=list)
    learners_next: list[int] = field(default_factory=list)
    auto_leave: bool = False


@dataclass(slots=True)
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(slots=True)
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def is_empty(self) -> bool:
        return self.metadata.index == 0


@dataclass(slots=True)
class HardState:
    term: int = 0
    vote: int = 0
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == 0 and self.commit == 0


@dataclass(slots=True)
class ConfChange:
    type: int = CONF_ADD_NODE
    node_id: int = 0
    context: bytes = b""
    id: int = 0


@dataclass(slots=True)
class Message:
    type: int = MSG_HUP
    to: int = NONE
    frm: int = NONE  # "from" in raftpb (a Python keyword)
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""

    def __repr__(self) -> str:
        return (
            f"{MSG_NAMES.get(self.type, self.type)}({self.frm}->{self.to} t{self.term} "
            f"lt{self.log_term} i{self.index} c{self.commit} n{len(self.entries)}"
            f"{' rej' if self.reject else ''}{' snap' if self.snapshot else ''})"
        )


@dataclass(slots=True)
class ReadState:
    """Answer to a ReadIndex request: serve the read once applied >= index."""

    index: int
    request_ctx: bytes


@dataclass(slots=True)
class SoftState:
    lead: int
    raft_state: str


def entry_size(e: Entry) -> int:
    """Approximate encoded size of an entry (payload plus framing)."""
    return len(e.data) + 12


def limit_size(ents: list[Entry], max_size: int) -> list[Entry]:
    """Return the longest prefix of ents within max_size bytes (at least one entry)."""
    n = len(ents)
    if n <= 1 or max_size >= (1 << 62):
        return ents
    if 12 * n + sum([len(e.data) for e in ents]) <= max_size:
        return ents  # common case: everything fits
    size = 0
    for i, e in enumerate(ents):
        size += len(e.data) + 12
        if size > max_size and i > 0:
            return ents[:i]
    return ents
