"""The Raft state machine of one node (roles, elections, replication, reads,
membership, leadership transfer), after etcd-io/raft's design.

Pure and deterministic: input is ``step(message)`` and ``tick()``; output is
``msgs``, ``read_states`` and the log, collected by :class:`kvetch.raft.rawnode.RawNode`.
Randomness (election timeouts) comes from the ``rng`` given in :class:`Config`.
Joint consensus is not implemented: membership changes are single-step
(one node at a time, the next change only after the previous one is applied).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Compacted, ProposalDropped, RaftError
from .log import NO_LIMIT, RaftLog
from .progress import PROBE, REPLICATE, SNAPSHOT, Progress, ProgressTracker
from .readonly import ReadOnly
from .storage import Storage
from .types import (
    CANDIDATE,
    CONF_ADD_LEARNER_NODE,
    CONF_ADD_NODE,
    CONF_REMOVE_NODE,
    ENTRY_CONF_CHANGE,
    ENTRY_CONF_CHANGE_V2,
    ENTRY_NORMAL,
    FOLLOWER,
    LEADER,
    MSG_APP,
    MSG_APP_RESP,
    MSG_BEAT,
    MSG_CHECK_QUORUM,
    MSG_HEARTBEAT,
    MSG_HEARTBEAT_RESP,
    MSG_HUP,
    MSG_PRE_VOTE,
    MSG_PRE_VOTE_RESP,
    MSG_PROP,
    MSG_READ_INDEX,
    MSG_READ_INDEX_RESP,
    MSG_SNAP,
    MSG_SNAP_STATUS,
    MSG_TIMEOUT_NOW,
    MSG_TRANSFER_LEADER,
    MSG_UNREACHABLE,
    MSG_VOTE,
    MSG_VOTE_RESP,
    NONE,
    PRE_CANDIDATE,
    ConfChange,
    ConfState,
    Entry,
    HardState,
    Message,
    ReadState,
    Snapshot,
    SoftState,
)

CAMPAIGN_PRE_ELECTION = b"CampaignPreElection"
CAMPAIGN_ELECTION = b"CampaignElection"
CAMPAIGN_TRANSFER = b"CampaignTransfer"


@dataclass
class Config:
    """Parameters of one Raft node.

    ``storage`` holds the persisted log. A brand-new cluster member starts from a
    storage holding the bootstrap entries (``storage.bootstrap_entries``: one
    committed ConfChange per initial member); a node joining an existing
    cluster starts empty and learns the membership from the leader. On restart
    the membership comes from the snapshot's ConfState plus the conf changes the
    application applies again. ``applied`` is the index the application has
    already applied (0 or the snapshot index on restart). ``rng`` must be seeded for
    deterministic runs.
    """

    id: int
    storage: Storage
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    max_size_per_msg: int = 1 << 20
    max_committed_size_per_ready: int = NO_LIMIT
    max_uncommitted_entries_size: int = 0  # 0: no limit
    max_inflight_msgs: int = 256
    check_quorum: bool = False
    pre_vote: bool = False
    disable_proposal_forwarding: bool = False
    rng: random.Random | None = None

    def validate(self) -> None:
        if self.id == NONE:
            raise ValueError("cannot use 0 as node id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")


class Raft:
    """State of one Raft node. Use through RawNode; attributes are read-only outside."""

    def __init__(self, c: Config) -> None:
        c.validate()
        self.id = c.id
        self.log = RaftLog(c.storage, c.max_committed_size_per_ready)
        hs, cs = c.storage.initial_state()
        self.max_msg_size = c.max_size_per_msg
        self.max_uncommitted_size = c.max_uncommitted_entries_size or NO_LIMIT
        self.trk = ProgressTracker(c.max_inflight_msgs)
        self.election_timeout = c.election_tick
        self.heartbeat_timeout = c.heartbeat_tick
        self.check_quorum = c.check_quorum
        self.pre_vote = c.pre_vote
        self.disable_proposal_forwarding = c.disable_proposal_forwarding
        self.rng = c.rng if c.rng is not None else random.Random(c.id)
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.pending_read_index_messages: list[Message] = []
        self.read_only = ReadOnly()
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = FOLLOWER
        self.is_learner = False
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_timeout
        self.bcast_pending = False
        self._step: Callable[[Message], None] = self._step_follower
        self._tick: Callable[[], None] = self._tick_election
        self._set_conf(set(cs.voters), set(cs.learners))
        if not hs.is_empty():
            self._load_state(hs)
        if c.applied > 0:
            self.log.applied_to(c.applied)
        self.become_follower(self.term, NONE)

    # -- state snapshots for the outside ----------------------------------------
    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.state)

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.log.committed or hs.commit > self.log.last_index():
            raise RaftError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{self.log.committed}, {self.log.last_index()}]"
            )
        self.log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def promotable(self) -> bool:
        """Whether this node may campaign: a voter with no pending snapshot."""
        pr = self.trk.progress.get(self.id)
        return pr is not None and not pr.is_learner and not self.log.has_pending_snapshot()

    # -- sending -------------------------------------------------------------------
    def send(self, m: Message) -> None:
        if m.frm == NONE:
            m.frm = self.id
        t = m.type
        if t in (MSG_VOTE, MSG_VOTE_RESP, MSG_PRE_VOTE, MSG_PRE_VOTE_RESP):
            if m.term == 0:
                raise RaftError(f"term should be set when sending {t}")
        elif t != MSG_PROP and t != MSG_READ_INDEX:
            # proposals and read requests forwarded to the leader keep term 0 (local)
            m.term = self.term
        self.msgs.append(m)

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, True)

    def maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send new entries (or a snapshot) to ``to`` if its progress allows."""
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        log = self.log
        prev = pr.next - 1
        try:
            term = log.term_or_raise(prev)
            ents = log.entries(pr.next, self.max_msg_size)
        except Compacted:
            # the entries the peer needs are compacted: send a snapshot
            if not pr.recent_active:
                return False
            snap = log.snapshot()
            if snap.is_empty():
                raise RaftError("need non-empty snapshot") from None
            pr.become_snapshot(snap.metadata.index)
            self.send(Message(type=MSG_SNAP, to=to, snapshot=snap))
            return True
        if not ents and not send_if_empty:
            return False
        if ents:
            if pr.state == REPLICATE:
                last = ents[-1].index
                pr.next = last + 1
                pr.inflights.buf.append(last)
            elif pr.state == PROBE:
                pr.probe_sent = True
        self.send(Message(type=MSG_APP, to=to, index=prev, log_term=term, entries=ents,
                          commit=log.committed))
        return True

    def send_heartbeat(self, to: int, ctx: bytes) -> None:
        # never advance a follower's commit beyond what it has (it may lack entries)
        commit = min(self.trk.progress[to].match, self.log.committed)
        self.send(Message(type=MSG_HEARTBEAT, to=to, commit=commit, context=ctx))

    def bcast_append(self) -> None:
        for id_ in self.trk.progress:
            if id_ != self.id:
                self.maybe_send_append(id_, True)

    def flush_proposals(self) -> None:
        """Send appends for proposals batched since the last flush (see MsgProp)."""
        self.bcast_pending = False
        if self.state != LEADER:
            return
        for id_ in self.trk.progress:
            if id_ != self.id:
                self.maybe_send_append(id_, False)

    def bcast_heartbeat(self) -> None:
        self.bcast_heartbeat_with_ctx(self.read_only.last_pending_request_ctx())

    def bcast_heartbeat_with_ctx(self, ctx: bytes) -> None:
        for id_ in self.trk.progress:
            if id_ != self.id:
                self.send_heartbeat(id_, ctx)

    # -- commit --------------------------------------------------------------------
    def maybe_commit(self) -> bool:
        return self.log.maybe_commit(self.trk.committed(), self.term)

    def committed_entry_in_current_term(self) -> bool:
        return self.log.term(self.log.committed) == self.term

    def on_persisted(self, index: int) -> None:
        """The application persisted the log up to index: count the leader's own ack."""
        if self.state != LEADER:
            return
        pr = self.trk.progress.get(self.id)
        if pr is None or index > self.log.last_index():
            return
        if pr.maybe_update(index) and self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()

    def _last_stable_index(self) -> int:
        u = self.log.unstable
        if u.snapshot is not None:
            return 0
        stored = self.log.storage.last_index()
        if u.entries:
            return min(stored, u.offset - 1)
        return stored

    # -- roles ---------------------------------------------------------------------
    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.trk.reset_votes()
        last = self.log.last_index()
        mi = self.trk.max_inflight
        for id_, pr in list(self.trk.progress.items()):
            np_ = Progress(0, last + 1, mi, pr.is_learner)
            if id_ == self.id:
                np_.match = self._last_stable_index()
            self.trk.progress[id_] = np_
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly()
        self.bcast_pending = False

    def reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(self.election_timeout)

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def become_follower(self, term: int, lead: int) -> None:
        self._step = self._step_follower
        self.reset(term)
        self._tick = self._tick_election
        self.lead = lead
        self.state = FOLLOWER

    def become_candidate(self) -> None:
        if self.state == LEADER:
            raise RaftError("invalid transition [leader -> candidate]")
        self._step = self._step_candidate
        self.reset(self.term + 1)
        self._tick = self._tick_election
        self.vote = self.id
        self.state = CANDIDATE

    def become_pre_candidate(self) -> None:
        if self.state == LEADER:
            raise RaftError("invalid transition [leader -> pre-candidate]")
        # pre-vote changes neither term nor vote
        self._step = self._step_candidate
        self.trk.reset_votes()
        self._tick = self._tick_election
        self.lead = NONE
        self.state = PRE_CANDIDATE

    def become_leader(self) -> None:
        if self.state == FOLLOWER:
            raise RaftError("invalid transition [follower -> leader]")
        self._step = self._step_leader
        self.reset(self.term)
        self._tick = self._tick_heartbeat
        self.lead = self.id
        self.state = LEADER
        pr = self.trk.progress[self.id]
        match = pr.match
        pr.become_replicate()
        pr.match = match
        pr.next = self.log.last_index() + 1
        # conservatively no conf change until everything before this term is applied
        self.pending_conf_index = self.log.last_index()
        if not self.append_entry([Entry(data=b"")]):
            raise RaftError("empty entry was dropped")

    def hup(self, kind: bytes) -> None:
        if self.state == LEADER:
            return
        if not self.promotable():
            return
        lo = max(self.log.applied + 1, self.log.first_index())
        if self.log.committed >= lo:
            ents = self.log.slice(lo, self.log.committed + 1, NO_LIMIT)
            if any(e.type in (ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2) for e in ents):
                # the configuration we would campaign in is not final yet
                return
        self.campaign(kind)

    def campaign(self, kind: bytes) -> None:
        if not self.promotable():
            return
        if kind == CAMPAIGN_PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MSG_PRE_VOTE
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MSG_VOTE
            term = self.term
        resp_type = MSG_PRE_VOTE_RESP if vote_msg == MSG_PRE_VOTE else MSG_VOTE_RESP
        if self.poll(self.id, resp_type, True) == "won":
            # single-voter configuration
            if kind == CAMPAIGN_PRE_ELECTION:
                self.campaign(CAMPAIGN_ELECTION)
            else:
                self.become_leader()
            return
        last = self.log.last_index()
        last_term = self.log.last_term()
        ctx = CAMPAIGN_TRANSFER if kind == CAMPAIGN_TRANSFER else b""
        for id_ in sorted(self.trk.voters):
            if id_ == self.id:
                continue
            self.send(Message(type=vote_msg, to=id_, term=term, index=last, log_term=last_term,
                              context=ctx))

    def poll(self, id_: int, t: int, granted: bool) -> str:
        self.trk.record_vote(id_, granted)
        return self.trk.vote_result(self.trk.votes)

    # -- step ------------------------------------------------------------------------
    def can_vote(self, m: Message) -> bool:
        """§5.2/§5.4.1: one vote per term (re-grant to the same candidate is fine)."""
        return (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type == MSG_PRE_VOTE and m.term > self.term)
        )

    def step(self, m: Message) -> None:
        """Advance the state machine with one message (raises ProposalDropped)."""
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if m.type == MSG_VOTE or m.type == MSG_PRE_VOTE:
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (self.check_quorum and self.lead != NONE
                            and self.election_elapsed < self.election_timeout)
                if not force and in_lease:
                    # §4.2.3: ignore disruptive candidates while we hear from a leader
                    return
            if m.type == MSG_PRE_VOTE:
                pass  # never change term on a pre-vote
            elif m.type == MSG_PRE_VOTE_RESP and not m.reject:
                pass  # the term is bumped once the pre-vote wins
            elif m.type in (MSG_APP, MSG_HEARTBEAT, MSG_SNAP):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (MSG_HEARTBEAT, MSG_APP):
                # tell a stale leader (e.g. after a partition) that a newer term exists
                self.send(Message(type=MSG_APP_RESP, to=m.frm))
            elif m.type == MSG_PRE_VOTE:
                self.send(Message(type=MSG_PRE_VOTE_RESP, to=m.frm, term=self.term, reject=True))
            return

        t = m.type
        if t == MSG_HUP:
            self.hup(CAMPAIGN_PRE_ELECTION if self.pre_vote else CAMPAIGN_ELECTION)
        elif t in (MSG_VOTE, MSG_PRE_VOTE):
            resp = MSG_VOTE_RESP if t == MSG_VOTE else MSG_PRE_VOTE_RESP
            if self.can_vote(m) and self.log.is_up_to_date(m.index, m.log_term):
                self.send(Message(type=resp, to=m.frm, term=m.term))
                if t == MSG_VOTE:
                    self.election_elapsed = 0
                    self.vote = m.frm
            else:
                self.send(Message(type=resp, to=m.frm, term=self.term, reject=True))
        else:
            self._step(m)

    # leader -------------------------------------------------------------------------
    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MSG_BEAT:
            self.bcast_heartbeat()
            return
        if t == MSG_CHECK_QUORUM:
            pr = self.trk.progress.get(self.id)
            if pr is not None:
                pr.recent_active = True
            if not self.trk.quorum_active():
                self.become_follower(self.term, NONE)
            for id_, pr in self.trk.progress.items():
                if id_ != self.id:
                    pr.recent_active = False
            return
        if t == MSG_PROP:
            if not m.entries:
                raise RaftError("stepped empty MsgProp")
            if self.id not in self.trk.progress:
                raise ProposalDropped("this node was removed from the configuration")
            if self.lead_transferee != NONE:
                raise ProposalDropped("leadership transfer in progress")
            if m.frm != self.id:
                # forwarded: never alias entry objects owned by a transport or a peer
                m.entries = [Entry(0, 0, e.type, e.data) for e in m.entries]
            last = self.log.last_index()
            for i, e in enumerate(m.entries):
                if e.type == ENTRY_CONF_CHANGE or e.type == ENTRY_CONF_CHANGE_V2:
                    if self.pending_conf_index > self.log.applied:
                        # one change at a time: neutralise this one
                        m.entries[i] = Entry(type=ENTRY_NORMAL)
                    else:
                        self.pending_conf_index = last + i + 1
            if not self.append_entry(m.entries):
                raise ProposalDropped("too many uncommitted entries")
            self.bcast_pending = True
            return
        if t == MSG_READ_INDEX:
            if not self.committed_entry_in_current_term():
                # §6.4: a new leader first commits an entry of its own term
                self.pending_read_index_messages.append(m)
                return
            self._send_read_index_response(m)
            return

        pr = self.trk.progress.get(m.frm)
        if pr is None:
            return
        if t == MSG_APP_RESP:
            self._handle_app_resp(m, pr)
        elif t == MSG_HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state == REPLICATE and pr.inflights.full():
                pr.inflights.free_first_one()
            if pr.match < self.log.last_index():
                self.send_append(m.frm)
            if not m.context:
                return
            acks = self.read_only.recv_ack(m.frm, m.context)
            if acks is None or self.trk.vote_result(acks) != "won":
                return
            for rs in self.read_only.advance(m.context):
                self._answer_read_index(rs.req, rs.index)
        elif t == MSG_SNAP_STATUS:
            if pr.state != SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # wait for a heartbeat response before probing again
            pr.probe_sent = True
        elif t == MSG_UNREACHABLE:
            if pr.state == REPLICATE:
                pr.become_probe()
        elif t == MSG_TRANSFER_LEADER:
            if pr.is_learner:
                return
            transferee = m.frm
            if self.lead_transferee != NONE:
                if self.lead_transferee == transferee:
                    return
                self.abort_leader_transfer()
            if transferee == self.id:
                return
            # §3.10: the transfer must finish within an election timeout
            self.election_elapsed = 0
            self.lead_transferee = transferee
            if pr.match == self.log.last_index():
                self.send_timeout_now(transferee)
            else:
                self.send_append(transferee)

    def _handle_app_resp(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                next_probe = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state == REPLICATE:
                    pr.become_probe()
                self.send_append(m.frm)
            return
        old_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        if pr.state == PROBE:
            pr.become_replicate()
        elif pr.state == SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        elif old_paused:
            self.send_append(m.frm)
        while self.maybe_send_append(m.frm, False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.log.last_index():
            self.send_timeout_now(m.frm)

    def _release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages or not self.committed_entry_in_current_term():
            return
        msgs, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in msgs:
            self._send_read_index_response(m)

    def _send_read_index_response(self, m: Message) -> None:
        if self.trk.voters == {self.id}:
            # the only voter: nobody else can have committed anything newer
            self._answer_read_index(m, self.log.committed)
            return
        ctx = m.entries[0].data
        self.read_only.add_request(self.log.committed, m)
        self.read_only.recv_ack(self.id, ctx)
        self.bcast_heartbeat_with_ctx(ctx)

    def _answer_read_index(self, req: Message, index: int) -> None:
        if req.frm == NONE or req.frm == self.id:
            self.read_states.append(ReadState(index, req.entries[0].data))
        else:
            self.send(Message(type=MSG_READ_INDEX_RESP, to=req.frm, index=index, entries=req.entries))

    def send_timeout_now(self, to: int) -> None:
        self.send(Message(type=MSG_TIMEOUT_NOW, to=to))

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    def append_entry(self, es: list[Entry]) -> bool:
        li = self.log.last_index()
        term = self.term
        size = 0
        for i, e in enumerate(es):
            e.term = term
            e.index = li + 1 + i
            size += len(e.data)
        if self.max_uncommitted_size < NO_LIMIT and size:
            if self.uncommitted_size > 0 and self.uncommitted_size + size > self.max_uncommitted_size:
                return False
            self.uncommitted_size += size
        # the leader's own ack is counted once the entries are persisted (on_persisted)
        self.log.append(es)
        return True

    def propose_fast(self, data: bytes) -> bool:
        """Leader fast path for one normal proposal (same rules as MsgProp, without
        building a message); False when not applicable (caller takes the slow path)."""
        if (self.state != LEADER or self.lead_transferee != NONE
                or self.max_uncommitted_size < NO_LIMIT or self.id not in self.trk.progress):
            return False
        u = self.log.unstable
        if not u.entries or u.snapshot is not None:
            return False
        u.entries.append(Entry(self.term, u.offset + len(u.entries), ENTRY_NORMAL, data))
        self.bcast_pending = True
        return True

    def reduce_uncommitted_size(self, ents: list[Entry]) -> None:
        if self.uncommitted_size == 0:
            return
        s = sum(len(e.data) for e in ents)
        self.uncommitted_size = max(0, self.uncommitted_size - s)

    # candidate ---------------------------------------------------------------------
    def _step_candidate(self, m: Message) -> None:
        t = m.type
        my_resp = MSG_PRE_VOTE_RESP if self.state == PRE_CANDIDATE else MSG_VOTE_RESP
        if t == MSG_PROP:
            raise ProposalDropped("no leader")
        if t == MSG_APP:
            self.become_follower(m.term, m.frm)
            self._handle_append_entries(m)
        elif t == MSG_HEARTBEAT:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif t == MSG_SNAP:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif t == my_resp:
            res = self.poll(m.frm, t, not m.reject)
            if res == "won":
                if self.state == PRE_CANDIDATE:
                    self.campaign(CAMPAIGN_ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res == "lost":
                self.become_follower(self.term, NONE)

    # follower ----------------------------------------------------------------------
    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MSG_PROP:
            if self.lead == NONE:
                raise ProposalDropped("no leader")
            if self.disable_proposal_forwarding:
                raise ProposalDropped("proposal forwarding disabled")
            m.to = self.lead
            self.send(m)
        elif t == MSG_APP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append_entries(m)
        elif t == MSG_HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_heartbeat(m)
        elif t == MSG_SNAP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif t == MSG_TRANSFER_LEADER:
            if self.lead == NONE:
                raise ProposalDropped("no leader to transfer leadership from")
            m.to = self.lead
            self.send(m)
        elif t == MSG_TIMEOUT_NOW:
            # transfers skip pre-vote: we know the leader is there and agrees
            self.hup(CAMPAIGN_TRANSFER)
        elif t == MSG_READ_INDEX:
            if self.lead == NONE:
                raise ProposalDropped("no leader")
            m.to = self.lead
            self.send(m)
        elif t == MSG_READ_INDEX_RESP:
            if len(m.entries) != 1:
                return
            self.read_states.append(ReadState(m.index, m.entries[0].data))

    def _handle_append_entries(self, m: Message) -> None:
        log = self.log
        if m.index < log.committed:
            self.send(Message(type=MSG_APP_RESP, to=m.frm, index=log.committed))
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self.send(Message(type=MSG_APP_RESP, to=m.frm, index=last_new))
            return
        hint = min(m.index, log.last_index())
        hint = log.find_conflict_by_term(hint, m.log_term)
        self.send(Message(type=MSG_APP_RESP, to=m.frm, index=m.index, reject=True,
                          reject_hint=hint, log_term=log.term(hint)))

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self.send(Message(type=MSG_HEARTBEAT_RESP, to=m.frm, context=m.context))

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        if self.restore(m.snapshot):
            self.send(Message(type=MSG_APP_RESP, to=m.frm, index=self.log.last_index()))
        else:
            self.send(Message(type=MSG_APP_RESP, to=m.frm, index=self.log.committed))

    def restore(self, s: Snapshot) -> bool:
        """Install a snapshot from the leader; False if it is stale or already known."""
        meta = s.metadata
        if meta.index <= self.log.committed:
            return False
        if self.state != FOLLOWER:
            # defensive: only followers install snapshots
            self.become_follower(self.term + 1, NONE)
            return False
        cs = meta.conf_state
        if self.id not in cs.voters and self.id not in cs.learners:
            return False
        if self.log.match_term(meta.index, meta.term):
            # we already have the snapshot's entries: just move commit
            self.log.commit_to(meta.index)
            return False
        self.log.restore(s)
        self.trk.progress = {}
        self._set_conf(set(cs.voters), set(cs.learners))
        pr = self.trk.progress[self.id]
        pr.maybe_update(pr.next - 1)
        return True

    # ticks ---------------------------------------------------------------------------
    def tick(self) -> None:
        self._tick()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MSG_HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MSG_CHECK_QUORUM, frm=self.id))
            # a transfer that did not finish within an election timeout is abandoned
            if self.state == LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
            if self.state == LEADER and not self._is_voter():
                self._hand_over()  # try again (or another successor)
        if self.state != LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MSG_BEAT, frm=self.id))

    # membership ------------------------------------------------------------------------
    def _set_conf(self, voters: set[int], learners: set[int]) -> None:
        trk = self.trk
        trk.voters = voters
        trk.learners = learners
        last = self.log.last_index()
        for id_ in voters | learners:
            pr = trk.progress.get(id_)
            if pr is None:
                pr = Progress(0, last + 1, trk.max_inflight, id_ in learners)
                # a new peer is not considered down right away (check-quorum)
                pr.recent_active = True
                if id_ == self.id:
                    pr.match = self._last_stable_index()
                trk.progress[id_] = pr
            else:
                pr.is_learner = id_ in learners
        for id_ in [i for i in trk.progress if i not in voters and i not in learners]:
            del trk.progress[id_]
        self.is_learner = self.id in learners

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed single-step change; returns the new ConfState.

        AddNode adds a voter or promotes a learner; AddLearnerNode adds a learner
        (or demotes a voter); RemoveNode removes; UpdateNode changes nothing.
        A change that would leave no voter is ignored.
        """
        voters = set(self.trk.voters)
        learners = set(self.trk.learners)
        nid = cc.node_id
        if nid == NONE:
            return self.trk.conf_state()
        if cc.type == CONF_ADD_NODE:
            learners.discard(nid)
            voters.add(nid)
        elif cc.type == CONF_ADD_LEARNER_NODE:
            voters.discard(nid)
            learners.add(nid)
        elif cc.type == CONF_REMOVE_NODE:
            voters.discard(nid)
            learners.discard(nid)
        if not voters:
            return self.trk.conf_state()
        self._set_conf(voters, learners)
        self._switch_to_config()
        return self.trk.conf_state()

    def _switch_to_config(self) -> None:
        if self.state != LEADER:
            return
        if self.lead_transferee != NONE and self.lead_transferee not in self.trk.voters:
            self.abort_leader_transfer()
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        else:
            for id_ in self.trk.progress:
                if id_ != self.id:
                    self.maybe_send_append(id_, False)
        if not self._is_voter():
            self._hand_over()

    def _is_voter(self) -> bool:
        pr = self.trk.progress.get(self.id)
        return pr is not None and not pr.is_learner

    def _hand_over(self) -> None:
        """This leader was removed or demoted: it keeps leading (so the rest of the
        cluster learns the commit of its removal) while it transfers leadership to
        the most up-to-date voter, retrying every election timeout until a message
        of a newer term makes it a follower (it accepts no proposals meanwhile).
        With no voter left to take over it steps down."""
        best, best_match = NONE, -1
        for id_ in sorted(self.trk.voters):
            pr = self.trk.progress.get(id_)
            if id_ != self.id and pr is not None and pr.match > best_match:
                best, best_match = id_, pr.match
        if best == NONE:
            self.become_follower(self.term, NONE)
            return
        self.abort_leader_transfer()
        self.election_elapsed = 0
        self.lead_transferee = best
        if best_match == self.log.last_index():
            self.send_timeout_now(best)
        else:
            self.send_append(best)
