"""kvetch.raft: Raft consensus as a pure, deterministic state machine.

No sockets, disks, clocks or asyncio here, and nothing else of kvetch is
imported. The application drives a :class:`RawNode` (tick, step, propose,
ready/advance), persists through a :class:`Storage`, and sends messages
encoded with :mod:`kvetch.raft.codec` (raftpb wire format).
"""

from .core import Config
from .errors import (
    Compacted,
    ConfChangeRejected,
    ProposalDropped,
    RaftError,
    SnapOutOfDate,
    SnapshotTemporarilyUnavailable,
    StepLocalMsg,
    Unavailable,
)
from .progress import PROBE, REPLICATE, SNAPSHOT
from .rawnode import LEARNER_READY_PERCENT, ProgressInfo, RawNode, Ready, Status
from .storage import MemoryStorage, Storage, bootstrap_entries
from .types import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    NONE,
    PRE_CANDIDATE,
    ConfChange,
    ConfState,
    Entry,
    HardState,
    Message,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SoftState,
)

__all__ = [
    "CANDIDATE", "FOLLOWER", "LEADER", "LEARNER_READY_PERCENT", "NONE", "PRE_CANDIDATE", "PROBE",
    "REPLICATE", "SNAPSHOT", "Compacted", "ConfChange", "ConfChangeRejected", "ConfState", "Config",
    "Entry", "HardState", "MemoryStorage", "Message", "ProgressInfo", "ProposalDropped", "RaftError",
    "RawNode", "ReadState", "Ready", "SnapOutOfDate", "Snapshot", "SnapshotMetadata",
    "SnapshotTemporarilyUnavailable", "SoftState", "Status", "StepLocalMsg", "Storage", "Unavailable",
    "bootstrap_entries",
]
