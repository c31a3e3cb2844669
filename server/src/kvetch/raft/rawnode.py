"""RawNode: the application-facing handle on one Raft node, with the Ready/Advance
cycle.

Loop (all on one thread or task)::

    node.tick()                  # every tick interval
    node.step(msg)               # for every message from a peer
    node.propose(data) / read_index(ctx) / ...
    if node.has_ready():
        rd = node.ready()
        # 1. persist rd.snapshot (if any), rd.entries and rd.hard_state (if any),
        #    fsync when rd.must_sync
        # 2. send rd.messages (only now: they may depend on what was persisted)
        # 3. apply rd.snapshot to the state machine, then rd.committed_entries
        #    (calling node.apply_conf_change for EntryConfChange entries)
        # 4. serve rd.read_states once applied >= read_state.index
        node.advance(rd)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from .codec import encode_conf_change
from .core import CAMPAIGN_ELECTION, Config, Raft
from .errors import ProposalDropped, StepLocalMsg
from .types import (
    ENTRY_CONF_CHANGE,
    LEADER,
    LOCAL_MSGS,
    MSG_HUP,
    MSG_PROP,
    MSG_READ_INDEX,
    MSG_SNAP_STATUS,
    MSG_TRANSFER_LEADER,
    MSG_UNREACHABLE,
    NONE,
    RESPONSE_MSGS,
    ConfChange,
    ConfState,
    Entry,
    HardState,
    Message,
    ReadState,
    Snapshot,
    SoftState,
)

#: a learner is ready for promotion when its match is at least this share of the
#: leader's (etcd's isLearnerReady)
LEARNER_READY_PERCENT = 0.9


@dataclass(slots=True)
class Ready:
    """One batch of work for the application (see the module docstring for order)."""

    soft_state: SoftState | None = None  # None: leader/role unchanged
    hard_state: HardState | None = None  # None: unchanged, nothing to persist
    read_states: list[ReadState] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)  # to append to stable storage
    snapshot: Snapshot | None = None  # to persist and apply
    committed_entries: list[Entry] = field(default_factory=list)  # to apply, in order
    messages: list[Message] = field(default_factory=list)  # to send after persisting
    must_sync: bool = False


@dataclass(slots=True)
class ProgressInfo:
    match: int
    next: int
    state: str
    is_learner: bool
    paused: bool
    recent_active: bool
    pending_snapshot: int
    inflight: int


@dataclass(slots=True)
class Status:
    id: int
    term: int
    vote: int
    commit: int
    applied: int
    lead: int
    raft_state: str
    lead_transferee: int
    conf_state: ConfState
    progress: dict[int, ProgressInfo]  # empty unless this node is the leader


class RawNode:
    """Thread-unsafe wrapper of a Raft node. All methods are O(work) and never block."""

    def __init__(self, config: Config) -> None:
        self.raft = Raft(config)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()

    # -- inputs ------------------------------------------------------------------
    def tick(self) -> None:
        """Advance the logical clock by one tick (elections, heartbeats)."""
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (pre-vote first if enabled)."""
        self.raft.step(Message(type=MSG_HUP, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose one normal entry. Raises ProposalDropped (no leader, transfer)."""
        if self.raft.propose_fast(data):
            return
        self.raft.step(Message(type=MSG_PROP, frm=self.raft.id, entries=[Entry(data=data)]))

    def propose_batch(self, datas: list[bytes]) -> None:
        """Propose several normal entries in one step (all or nothing)."""
        self.raft.step(Message(type=MSG_PROP, frm=self.raft.id,
                               entries=[Entry(data=d) for d in datas]))

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a single-step membership change (raftpb.ConfChange in the entry).
        A change proposed while another one is not yet applied becomes a no-op entry."""
        e = Entry(type=ENTRY_CONF_CHANGE, data=encode_conf_change(cc))
        self.raft.step(Message(type=MSG_PROP, frm=self.raft.id, entries=[e]))

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed conf change entry (call while applying it); returns the
        new ConfState, to store with snapshots."""
        return self.raft.apply_conf_change(cc)

    def step(self, m: Message) -> None:
        """Feed a message received from a peer."""
        if m.type in LOCAL_MSGS:
            raise StepLocalMsg(m.type)
        if m.type in RESPONSE_MSGS and m.frm not in self.raft.trk.progress:
            return  # response from a peer that is no longer a member
        with contextlib.suppress(ProposalDropped):
            # a forwarded proposal or read that cannot go on is dropped silently (as
            # etcd does); only the local propose/read_index callers get the error
            self.raft.step(m)

    def read_index(self, ctx: bytes) -> None:
        """Request a linearizable read point; the answer comes as a ReadState with
        this ctx in a later Ready. ctx must be non-empty and unique."""
        if not ctx:
            raise ValueError("read_index needs a non-empty, unique context")
        self.raft.step(Message(type=MSG_READ_INDEX, frm=self.raft.id, entries=[Entry(data=ctx)]))

    def transfer_leader(self, to: int) -> None:
        """Ask the leader to hand leadership to ``to`` (catch up, then TimeoutNow)."""
        self.raft.step(Message(type=MSG_TRANSFER_LEADER, frm=to))

    def report_unreachable(self, id_: int) -> None:
        """The transport could not reach id_: the leader stops pipelining to it."""
        self.raft.step(Message(type=MSG_UNREACHABLE, frm=id_))

    def report_snapshot(self, id_: int, ok: bool) -> None:
        """Outcome of sending a MsgSnap to id_ (must be reported, failure included)."""
        self.raft.step(Message(type=MSG_SNAP_STATUS, frm=id_, reject=not ok))

    # -- Ready / Advance -----------------------------------------------------------
    def has_ready(self) -> bool:
        r = self.raft
        if r.bcast_pending:
            r.flush_proposals()
        if r.msgs or r.log.unstable.entries or r.read_states:
            return True
        if r.log.unstable.snapshot is not None or r.log.has_next_ents():
            return True
        if r.lead != self._prev_soft.lead or r.state != self._prev_soft.raft_state:
            return True
        p = self._prev_hard
        return r.term != p.term or r.vote != p.vote or r.log.committed != p.commit

    def ready(self) -> Ready:
        """Collect the pending work; the messages and read states are handed over now."""
        r = self.raft
        if r.bcast_pending:
            r.flush_proposals()
        log = r.log
        committed = log.next_ents() if log.committed > log.applied else []
        rd = Ready(entries=list(log.unstable.entries), committed_entries=committed,
                   messages=r.msgs, read_states=r.read_states, snapshot=log.unstable.snapshot)
        r.msgs = []
        r.read_states = []
        ps = self._prev_soft
        if r.lead != ps.lead or r.state != ps.raft_state:
            rd.soft_state = self._prev_soft = r.soft_state()
        p = self._prev_hard
        if r.term != p.term or r.vote != p.vote or log.committed != p.commit:
            rd.hard_state = HardState(r.term, r.vote, log.committed)
            rd.must_sync = r.term != p.term or r.vote != p.vote
        if rd.entries:
            rd.must_sync = True
        return rd

    def advance(self, rd: Ready) -> None:
        """Tell Raft the Ready was persisted, sent and applied."""
        r = self.raft
        log = r.log
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
            if r.uncommitted_size:
                r.reduce_uncommitted_size(rd.committed_entries)
        elif rd.snapshot is not None:
            log.applied_to(rd.snapshot.metadata.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
            if r.state == LEADER and log.term(last.index) == last.term:
                r.on_persisted(last.index)
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.metadata.index)

    # -- observation ------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.raft.id

    @property
    def leader(self) -> int:
        """Current leader id as known here (0: none)."""
        return self.raft.lead

    @property
    def term(self) -> int:
        return self.raft.term

    @property
    def role(self) -> str:
        """StateFollower, StatePreCandidate, StateCandidate or StateLeader."""
        return self.raft.state

    @property
    def commit_index(self) -> int:
        return self.raft.log.committed

    @property
    def applied_index(self) -> int:
        return self.raft.log.applied

    @property
    def is_leader(self) -> bool:
        return self.raft.state == LEADER

    def conf_state(self) -> ConfState:
        return self.raft.trk.conf_state()

    def progress(self) -> dict[int, ProgressInfo]:
        """Per-peer replication progress (only meaningful on the leader)."""
        r = self.raft
        if r.state != LEADER:
            return {}
        return {
            id_: ProgressInfo(pr.match, pr.next, pr.state, pr.is_learner, pr.is_paused(),
                              pr.recent_active, pr.pending_snapshot, pr.inflights.count())
            for id_, pr in sorted(r.trk.progress.items())
        }

    def status(self) -> Status:
        r = self.raft
        return Status(
            id=r.id, term=r.term, vote=r.vote, commit=r.log.committed, applied=r.log.applied,
            lead=r.lead, raft_state=r.state, lead_transferee=r.lead_transferee,
            conf_state=r.trk.conf_state(), progress=self.progress(),
        )

    def is_learner_ready(self, id_: int) -> bool:
        """etcd's MemberPromote rule, on the leader: the learner's match is at least
        90% of the leader's. True also when id_ is not a learner (nothing to check);
        raises ProposalDropped when this node is not the leader."""
        r = self.raft
        if r.state != LEADER:
            raise ProposalDropped("not leader")
        pr = r.trk.progress.get(id_)
        if pr is None or not pr.is_learner:
            return True
        leader_pr = r.trk.progress.get(r.id)
        leader_match = leader_pr.match if leader_pr is not None else r.log.last_index()
        return pr.match >= leader_match * LEARNER_READY_PERCENT


__all__ = ["CAMPAIGN_ELECTION", "NONE", "Config", "ProgressInfo", "RawNode", "Ready", "Status"]
