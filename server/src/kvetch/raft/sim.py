"""Deterministic cluster simulator and safety/liveness checker for kvetch.raft.

One seed fixes everything: cluster shape (1-7 nodes, some learners), options
(pre-vote, check-quorum, inflight window, message size) and the schedule of
events. The scheduler delivers, drops, duplicates, delays and reorders
messages, partitions and heals the network, crashes nodes (losing whatever was
not persisted, sometimes in the middle of handling a Ready) and restarts them
from their storage, compacts logs (forcing snapshots), changes membership and
transfers leadership. After every step it checks:

- election safety: at most one leader per term;
- log matching: an (index, term) pair names one entry with one predecessor term;
- leader completeness: a new leader's log holds every committed entry;
- committed entries never change (whatever crashed), commit indexes are backed;
- state-machine safety: nodes apply the same entry at an index, in order, and a
  node's applied state never rolls back (snapshots restore a matching state);
- ReadIndex: a read state's index is at least the commit index known anywhere
  when the read was issued (no stale reads).

At the end the network heals and stays stable: a leader must be elected and a
proposal committed within ``LIVENESS_TICKS`` ticks.

CLI::

    python -m kvetch.raft.sim --seeds 2000          # ends with "2000 schedules, 0 violations"
    python -m kvetch.raft.sim --seed 1234 --steps 180 -v   # replay one schedule with a trace
    python -m kvetch.raft.sim --seeds 300 --bug double_vote  # check the checker
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import random
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from .codec import decode_conf_change
from .core import Config, Raft
from .errors import ProposalDropped, RaftError
from .rawnode import RawNode, Ready
from .storage import MemoryStorage
from .types import (
    CONF_ADD_LEARNER_NODE,
    CONF_ADD_NODE,
    CONF_REMOVE_NODE,
    ENTRY_CONF_CHANGE,
    LEADER,
    MSG_SNAP,
    ConfChange,
    ConfState,
    Message,
    Snapshot,
    SnapshotMetadata,
)

ELECTION_TICK = 10
LIVENESS_TICKS = 50 * ELECTION_TICK
MAX_NODES = 7
MAX_INFLIGHT_NET = 400
DEFAULT_STEPS = 1500

#: deliberate bugs the checker must catch (see tests/raft/test_sim.py)
BUGS: dict[str, str] = {
    "double_vote": "a node grants its vote to every candidate of a term",
    "commit_prev_term": "a leader commits entries of earlier terms by counting replicas",
    "no_log_check": "voters ignore whether the candidate's log is up to date",
    "stale_read": "a new leader serves ReadIndex before committing an entry of its term",
    "ack_before_persist": "followers acknowledge appends they have not persisted",
}


class Violation(Exception):
    pass


def _digest(prev: int, term: int, type_: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(b"%d:%d:%d" % (prev, term, type_)))


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    rn: RawNode | None = None
    removed: bool = False
    # volatile state machine: applied index and a digest chain of applied entries
    sm_index: int = 0
    sm_digest: int = 0
    conf_state: ConfState = field(default_factory=ConfState)
    reads: dict[bytes, int] = field(default_factory=dict)  # ctx -> commit known at issue
    incarnation: int = 0


def _inject(raft: Raft, bug: str) -> None:
    """Break one rule on this node (instance-level override, for checker tests)."""
    inst: dict[str, Callable[..., object]] = raft.__dict__
    if bug == "double_vote":
        inst["can_vote"] = lambda m: True
    elif bug == "commit_prev_term":
        def commit_any() -> bool:
            mci = raft.trk.committed()
            if mci > raft.log.committed:
                raft.log.commit_to(mci)
                return True
            return False
        inst["maybe_commit"] = commit_any
    elif bug == "no_log_check":
        orig = raft.step

        def step(m: Message) -> None:
            if m.type in (5, 17):  # MsgVote, MsgPreVote: pretend the log is up to date
                last = raft.log.last_index()
                m.index, m.log_term = max(m.index, last), max(m.log_term, raft.log.last_term())
            orig(m)
        inst["step"] = step
    elif bug == "stale_read":
        inst["committed_entry_in_current_term"] = lambda: True
    elif bug == "ack_before_persist":
        pass  # handled by the simulator's Ready processing
    else:
        raise ValueError(f"unknown bug {bug!r}")


class Simulation:
    def __init__(self, seed: int, steps: int = DEFAULT_STEPS, bug: str | None = None,
                 trace: Callable[[str], None] | None = None,
                 shape: dict[str, int] | None = None) -> None:
        """``shape`` pins the cluster for scripted scenarios: keys voters, learners,
        pre_vote, check_quorum, max_msg_size (others stay seeded)."""
        self.seed = seed
        self.steps = steps
        self.bug = bug
        self.trace = trace
        self.rng = random.Random(seed)
        rng = self.rng
        n_voters = rng.choice([1, 2, 3, 3, 3, 4, 5, 5, 7])
        n_learners = rng.randint(0, min(2, MAX_NODES - n_voters))
        self.pre_vote = rng.random() < 0.6
        self.check_quorum = rng.random() < 0.6
        self.max_inflight = rng.choice([1, 2, 4, 256])
        self.max_msg_size = rng.choice([16, 64, 1 << 20])
        self.p_drop = rng.choice([0.0, 0.05, 0.2])
        self.p_dup = rng.choice([0.0, 0.05])
        # action weights; a third of the seeds are crash-heavy with one entry per append
        crashy = rng.random() < 0.35
        if crashy:
            n_voters = rng.choice([3, 3, 5])
            n_learners = 0
            self.max_msg_size = 16
        w = {
            "tick": 15.0, "deliver": 50.0, "propose": 24.0, "read": 2.0, "compact": 2.0,
            "partition": 0.5, "heal": 0.8, "crash": 3.0 if crashy else 0.5,
            "restart": 3.0 if crashy else 0.8, "conf_change": 0.5 if crashy else 1.9,
            "transfer": 1.0, "crash_leader": 2.0 if crashy else 0.0,
        }
        total = sum(w.values())
        acc = 0.0
        self.actions: list[tuple[float, str]] = []
        for name, weight in w.items():
            acc += weight / total
            self.actions.append((acc, name))
        if shape:
            n_voters = shape.get("voters", n_voters)
            n_learners = shape.get("learners", n_learners)
            self.pre_vote = bool(shape.get("pre_vote", self.pre_vote))
            self.check_quorum = bool(shape.get("check_quorum", self.check_quorum))
            self.max_msg_size = shape.get("max_msg_size", self.max_msg_size)
        voters = list(range(1, n_voters + 1))
        learners = list(range(n_voters + 1, n_voters + n_learners + 1))
        self.next_id = n_voters + n_learners + 1
        self.nodes: dict[int, SimNode] = {}
        for i in voters + learners:
            node = SimNode(i, MemoryStorage())
            node.storage.bootstrap(voters, learners)
            self.nodes[i] = node
            self._start(node)
        self.net: list[tuple[int, Message]] = []  # (incarnation of receiver at send, msg)
        self.partition: dict[int, int] | None = None
        self.step_no = 0
        self.read_seq = 0
        self.prop_seq = 0
        # checker state
        self.leader_of_term: dict[int, int] = {}
        self.entry_id: dict[tuple[int, int], tuple[int, int]] = {}  # (i,t) -> (crc, prev term)
        self.committed_terms: list[int] = [0]  # index -> term of the committed entry
        self.applied: list[tuple[int, int]] = [(0, 0)]  # index -> (term, digest)
        self.checked_leaders: set[tuple[int, int]] = set()
        self.stats = {"commits": 0, "elections": 0, "snapshots": 0, "conf_changes": 0, "reads": 0}

    # -- node lifecycle -----------------------------------------------------------
    def _log(self, s: str) -> None:
        if self.trace is not None:
            self.trace(f"[{self.step_no}] {s}")

    def _start(self, node: SimNode) -> None:
        snap = node.storage.snapshot()
        cfg = Config(
            id=node.id, storage=node.storage, election_tick=ELECTION_TICK, heartbeat_tick=1,
            applied=snap.metadata.index, max_size_per_msg=self.max_msg_size,
            max_inflight_msgs=self.max_inflight, check_quorum=self.check_quorum,
            pre_vote=self.pre_vote, rng=random.Random(self.rng.getrandbits(32)),
        )
        node.rn = RawNode(cfg)
        node.incarnation += 1
        node.reads = {}
        if self.bug is not None and self.bug != "ack_before_persist":
            _inject(node.rn.raft, self.bug)
        # the state machine is volatile: rebuild it from the persisted snapshot
        if snap.metadata.index > 0:
            self._restore_sm(node, snap)
        else:
            node.sm_index, node.sm_digest = 0, 0
            cs = snap.metadata.conf_state
            node.conf_state = ConfState(list(cs.voters), list(cs.learners))

    def _restore_sm(self, node: SimNode, snap: Snapshot) -> None:
        idx_s, dig_s = snap.data.split(b":")
        idx, dig = int(idx_s), int(dig_s)
        if idx != snap.metadata.index:
            raise Violation(f"snapshot data index {idx} != metadata {snap.metadata.index}")
        if idx < len(self.applied) and self.applied[idx][1] != dig:
            raise Violation(f"node {node.id} restored a snapshot at {idx} with a different state")
        node.sm_index, node.sm_digest = idx, dig
        cs = snap.metadata.conf_state
        node.conf_state = ConfState(list(cs.voters), list(cs.learners))

    def _alive(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.rn is not None]

    def _crash(self, node: SimNode) -> None:
        self._log(f"crash {node.id}")
        node.rn = None

    # -- Ready processing ------------------------------------------------------------
    def _handle_ready(self, node: SimNode, crash_before_send: bool = False) -> None:
        rn = node.rn
        assert rn is not None
        if not rn.has_ready():
            return
        rd = rn.ready()
        st = node.storage
        ack_early = self.bug == "ack_before_persist"
        if ack_early:
            self._send(rd.messages, node)
            if crash_before_send:
                self._crash(node)  # acked, never persisted
                return
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
            self.stats["snapshots"] += 1
        if rd.entries:
            st.append(rd.entries)
            self._check_entries(node, rd)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        if crash_before_send:
            self._crash(node)
            return
        if not ack_early:
            self._send(rd.messages, node)
        if rd.snapshot is not None:
            self._restore_sm(node, rd.snapshot)
        for e in rd.committed_entries:
            self._apply(node, e.index, e.term, e.type, e.data)
        for rs in rd.read_states:
            issued = node.reads.pop(rs.request_ctx, None)
            if issued is None:
                continue
            self.stats["reads"] += 1
            if rs.index < issued:
                raise Violation(
                    f"stale read on node {node.id}: read index {rs.index} < commit {issued} at issue"
                )
        rn.advance(rd)

    def _send(self, msgs: list[Message], sender: SimNode) -> None:
        for m in msgs:
            if m.type == MSG_SNAP and m.snapshot is not None and sender.rn is not None:
                # as etcd does, ship a fresh snapshot of the sender's applied state
                # (its stored one may predate the recipient joining)
                i = sender.sm_index
                if i > m.snapshot.metadata.index:
                    log = sender.rn.raft.log
                    cs = sender.conf_state
                    m.snapshot = Snapshot(
                        data=b"%d:%d" % (i, sender.sm_digest),
                        metadata=SnapshotMetadata(ConfState(list(cs.voters), list(cs.learners)),
                                                  i, log.term(i)),
                    )
            to = self.nodes.get(m.to)
            inc = to.incarnation if to is not None else 0
            self.net.append((inc, m))

    def _check_entries(self, node: SimNode, rd: Ready) -> None:
        log = node.storage
        for e in rd.entries:
            prev = log.term(e.index - 1) if e.index - 1 >= log.first_index() - 1 else -1
            key = (e.index, e.term)
            ident = (zlib.crc32(e.data) ^ (e.type << 1), prev)
            old = self.entry_id.get(key)
            if old is None:
                self.entry_id[key] = ident
            elif old[0] != ident[0] or (prev != -1 and old[1] != -1 and old[1] != prev):
                raise Violation(f"log matching: node {node.id} has a different entry at {key}")

    def _apply(self, node: SimNode, index: int, term: int, type_: int, data: bytes) -> None:
        if index != node.sm_index + 1:
            raise Violation(f"node {node.id} applied {index} after {node.sm_index} (gap or rollback)")
        dig = _digest(node.sm_digest, term, type_, data)
        if index < len(self.applied):
            if self.applied[index] != (term, dig):
                raise Violation(
                    f"state machine safety: node {node.id} applied a different entry at {index}"
                )
        else:
            self.applied.append((term, dig))
        node.sm_index, node.sm_digest = index, dig
        if type_ == ENTRY_CONF_CHANGE:
            cc = decode_conf_change(data)
            assert node.rn is not None
            node.conf_state = node.rn.apply_conf_change(cc)
            if cc.type == CONF_REMOVE_NODE:
                # the removed node keeps running (it may still have to vote for the
                # node that finishes committing its removal); it never campaigns once
                # it has applied the removal itself
                gone = self.nodes.get(cc.node_id)
                if gone is not None and not gone.removed:
                    self._log(f"node {cc.node_id} removed")
                    gone.removed = True

    # -- invariants checked after every step ---------------------------------------------
    def _check(self) -> None:
        for node in self._alive():
            rn = node.rn
            assert rn is not None
            r = rn.raft
            if r.state == LEADER:
                other = self.leader_of_term.setdefault(r.term, node.id)
                if other != node.id:
                    raise Violation(f"election safety: {other} and {node.id} both lead term {r.term}")
                if (node.id, r.term) not in self.checked_leaders:
                    self.checked_leaders.add((node.id, r.term))
                    self.stats["elections"] += 1
                    self._check_leader_completeness(node)
            c = r.log.committed
            ct = self.committed_terms
            if c >= len(ct):
                for i in range(len(ct), c + 1):
                    t = r.log.term(i)
                    if t == 0:
                        t = self.applied[i][0] if i < len(self.applied) else -1
                    ct.append(t)
                self.stats["commits"] = c
            elif c > 0:
                t = r.log.term(c)
                if t and ct[c] not in (-1, t):
                    raise Violation(f"node {node.id} commits index {c} with term {t}, committed {ct[c]}")
        # fill in committed terms learned later (committed via snapshot elsewhere)
        ct = self.committed_terms
        for i in range(1, min(len(ct), len(self.applied))):
            if ct[i] == -1:
                ct[i] = self.applied[i][0]
            elif ct[i] != self.applied[i][0]:
                raise Violation(f"committed entry {i} (term {ct[i]}) applied as term {self.applied[i][0]}")

    def _check_leader_completeness(self, node: SimNode) -> None:
        assert node.rn is not None
        log = node.rn.raft.log
        first = log.first_index()
        for i in range(max(first, 1), len(self.committed_terms)):
            want = self.committed_terms[i]
            if want != -1 and log.term(i) != want:
                raise Violation(
                    f"leader completeness: leader {node.id} term {node.rn.term} lacks committed "
                    f"entry {i} (has term {log.term(i)}, committed {want})"
                )

    def _max_commit(self) -> int:
        return len(self.committed_terms) - 1

    # -- scheduler actions --------------------------------------------------------------
    def _connected(self, a: int, b: int) -> bool:
        p = self.partition
        return p is None or p.get(a, -1) == p.get(b, -2)

    def _deliver(self, k: int, reliable: bool = False) -> None:
        inc, m = self.net.pop(k)
        src = self.nodes.get(m.frm)
        dst = self.nodes.get(m.to)
        ok = (dst is not None and dst.rn is not None and dst.incarnation == inc
              and self._connected(m.frm, m.to))
        if ok and not reliable and self.rng.random() < self.p_drop:
            ok = False
        if m.type == MSG_SNAP and src is not None and src.rn is not None:
            src.rn.report_snapshot(m.to, ok)
        if not ok or dst is None or dst.rn is None:
            if src is not None and src.rn is not None and self.rng.random() < 0.2:
                src.rn.report_unreachable(m.to)  # the transport noticed
            return
        if not reliable and self.rng.random() < self.p_dup:
            self.net.append((inc, copy.deepcopy(m)))
        dst.rn.step(m)

    def _leader(self) -> SimNode | None:
        best = None
        for n in self._alive():
            assert n.rn is not None
            if n.rn.is_leader and (best is None or n.rn.term > best.rn.term):  # type: ignore[union-attr]
                best = n
        return best

    def _propose(self) -> None:
        alive = self._alive()
        if not alive:
            return
        node = self.rng.choice(alive)
        self.prop_seq += 1
        data = b"p%d" % self.prop_seq
        assert node.rn is not None
        with contextlib.suppress(ProposalDropped):
            node.rn.propose(data)

    def _read(self) -> None:
        alive = self._alive()
        if not alive:
            return
        node = self.rng.choice(alive)
        self.read_seq += 1
        ctx = b"r%d" % self.read_seq
        node.reads[ctx] = self._max_commit()
        assert node.rn is not None
        try:
            node.rn.read_index(ctx)
        except ProposalDropped:
            node.reads.pop(ctx, None)

    def _conf_change(self) -> None:
        leader = self._leader()
        if leader is None or leader.rn is None:
            return
        cs = leader.rn.conf_state()
        rng = self.rng
        choice = rng.random()
        members = len(cs.voters) + len(cs.learners)
        if choice < 0.35 and members < MAX_NODES:
            nid = self.next_id
            self.next_id += 1
            node = SimNode(nid, MemoryStorage())
            self.nodes[nid] = node
            self._start(node)
            cc = ConfChange(type=CONF_ADD_LEARNER_NODE, node_id=nid)
        elif choice < 0.7 and cs.learners:
            cc = ConfChange(type=CONF_ADD_NODE, node_id=rng.choice(cs.learners))
        elif choice < 0.8 and len(cs.voters) >= 3:
            # demote a voter to learner
            cc = ConfChange(type=CONF_ADD_LEARNER_NODE, node_id=rng.choice(cs.voters))
        elif len(cs.voters) + len(cs.learners) > 1:
            victim = rng.choice(cs.voters + cs.learners)
            if victim in cs.voters and len(cs.voters) <= 2:
                # 2 -> 1 voters is the one single-step removal that can wedge: if the
                # remaining voter never learns that the removal committed, it still
                # needs the removed node's vote (etcd has the same hole)
                return
            cc = ConfChange(type=CONF_REMOVE_NODE, node_id=victim)
        else:
            return
        self._log(f"propose conf change {cc}")
        self.stats["conf_changes"] += 1
        with contextlib.suppress(ProposalDropped):
            leader.rn.propose_conf_change(cc)

    def _compact(self) -> None:
        alive = self._alive()
        if not alive:
            return
        node = self.rng.choice(alive)
        st = node.storage
        i = node.sm_index
        if i <= st.snapshot().metadata.index or i > st.last_index():
            return
        data = b"%d:%d" % (i, node.sm_digest)
        st.create_snapshot(i, node.conf_state, data)
        st.compact(i)
        self._log(f"compact {node.id} at {i}")

    def step(self) -> None:
        rng = self.rng
        self.step_no += 1
        alive = self._alive()
        action = self._pick_action()
        if action == "tick":
            for n in alive:
                assert n.rn is not None
                n.rn.tick()
        elif action == "deliver":
            for _ in range(rng.randint(1, 6)):
                if self.net:
                    # mostly oldest-first, sometimes any (reordering / delay)
                    k = 0 if rng.random() < 0.6 else rng.randrange(len(self.net))
                    self._deliver(k)
        elif action == "propose":
            self._propose()
        elif action == "read":
            self._read()
        elif action == "compact":
            self._compact()
        elif action == "partition":
            self._partition()
        elif action == "heal":
            if self.partition is not None:
                self._log("heal")
            self.partition = None
        elif action == "crash":
            if alive:
                node = rng.choice(alive)
                if rng.random() < 0.5 and node.rn is not None and node.rn.has_ready():
                    self._log(f"crash {node.id} while handling ready")
                    self._handle_ready(node, crash_before_send=True)
                else:
                    self._crash(node)
        elif action == "crash_leader":
            # leaders dying right after replicating part of their log (Figure 8)
            leader = self._leader()
            if leader is not None:
                self._crash(leader)
        elif action == "restart":
            dead = [n for n in self.nodes.values() if n.rn is None]
            if dead:
                node = rng.choice(dead)
                self._log(f"restart {node.id}")
                self._start(node)
        elif action == "conf_change":
            self._conf_change()
        elif action == "transfer":
            leader = self._leader()
            if leader is not None and leader.rn is not None:
                target = rng.choice(leader.rn.conf_state().voters)
                self._log(f"transfer leader {leader.id} -> {target}")
                leader.rn.transfer_leader(target)
        for n in self._alive():
            if n.rn is not None and rng.random() < 0.5:
                self._handle_ready(n)
        if len(self.net) > MAX_INFLIGHT_NET:
            # the network is congested: the oldest messages are lost
            for _, m in self.net[: len(self.net) - MAX_INFLIGHT_NET]:
                src = self.nodes.get(m.frm)
                if m.type == MSG_SNAP and src is not None and src.rn is not None:
                    src.rn.report_snapshot(m.to, False)
            del self.net[: len(self.net) - MAX_INFLIGHT_NET]
        self._check()

    def _pick_action(self) -> str:
        x = self.rng.random()
        for edge, name in self.actions:
            if x < edge:
                return name
        return self.actions[-1][1]

    def _partition(self) -> None:
        ids = [n for n in self.nodes if not self.nodes[n].removed]
        rng = self.rng
        if rng.random() < 0.5:
            lone = rng.choice(ids)
            self.partition = {i: int(i == lone) for i in ids}
        else:
            self.partition = {i: rng.randint(0, 1) for i in ids}
        self._log(f"partition {self.partition}")

    # -- liveness ------------------------------------------------------------------------
    def _settle(self) -> None:
        """Deliver every message and handle every Ready until quiet (stable network)."""
        for _ in range(10_000):
            moved = False
            for n in self._alive():
                if n.rn is not None and n.rn.has_ready():
                    self._handle_ready(n)
                    moved = True
            while self.net:
                self._deliver(0, reliable=True)
                moved = True
            self._check()
            if not moved:
                return

    def liveness(self) -> int:
        """Heal, restart everyone, and require a commit within LIVENESS_TICKS ticks.
        Returns the ticks it took."""
        self._log("liveness: heal and restart all")
        self.partition = None
        for n in self.nodes.values():
            if n.rn is None:
                self._start(n)
        marker = b"liveness-%d" % self.seed
        proposed = False
        for t in range(LIVENESS_TICKS):
            self._settle()
            leader = self._leader()
            if leader is not None and leader.rn is not None:
                if proposed and any(
                    self.applied[i][1] and leader.sm_index >= i for i in self._marker_index(marker)
                ):
                    return t
                if not proposed or t % ELECTION_TICK == 0:
                    try:
                        leader.rn.propose(marker)
                        proposed = True
                    except ProposalDropped:
                        pass
            for n in self._alive():
                assert n.rn is not None
                n.rn.tick()
        raise Violation(f"liveness: no commit within {LIVENESS_TICKS} ticks of a stable network")

    def _marker_index(self, marker: bytes) -> list[int]:
        out = []
        for n in self._alive():
            assert n.rn is not None
            log = n.rn.raft.log
            if not n.rn.is_leader:
                continue
            lo = max(log.first_index(), log.committed - 50, 1)
            for e in log.slice(lo, log.committed + 1, 1 << 62):
                if e.data == marker:
                    out.append(e.index)
        return out

    def run(self) -> int:
        """Run the schedule then the liveness phase; return the liveness ticks."""
        while self.step_no < self.steps:
            self.step()
        return self.liveness()


@dataclass
class Result:
    seed: int
    ok: bool
    step: int
    error: str = ""
    liveness_ticks: int = 0


def run_seed(seed: int, steps: int, bug: str | None = None,
             trace: Callable[[str], None] | None = None) -> Result:
    sim = Simulation(seed, steps, bug, trace)
    try:
        ticks = sim.run()
    except Violation as exc:
        return Result(seed, False, sim.step_no, str(exc))
    except RaftError as exc:  # an internal assertion of the Raft code fired
        return Result(seed, False, sim.step_no, f"raft error: {exc}")
    except Exception as exc:  # any crash of the code under test is a finding too
        return Result(seed, False, sim.step_no, f"{type(exc).__name__}: {exc}")
    return Result(seed, True, sim.step_no, liveness_ticks=ticks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kvetch.raft.sim", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200, help="number of schedules (seeds start..start+N-1)")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--seed", type=int, help="run only this seed")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="scheduler steps per schedule")
    ap.add_argument("--bug", choices=sorted(BUGS), help="inject a deliberate bug")
    ap.add_argument("-v", "--verbose", action="store_true", help="trace events (with --seed)")
    ap.add_argument("--no-progress", action="store_true")
    opts = ap.parse_args(argv)
    bug_flag = f" --bug {opts.bug}" if opts.bug else ""
    if opts.seed is not None:
        res = run_seed(opts.seed, opts.steps, opts.bug, print if opts.verbose else None)
        if res.ok:
            print("1 schedules, 0 violations")
            return 0
        print(f"seed {res.seed}: {res.error} (step {res.step})")
        print("1 schedules, 1 violations")
        return 1
    seeds = range(opts.start, opts.start + opts.seeds)
    failures: list[Result] = []

    worst = [0]

    def one(seed: int) -> None:
        res = run_seed(seed, opts.steps, opts.bug)
        worst[0] = max(worst[0], res.liveness_ticks)
        if not res.ok:
            failures.append(res)
            print(f"seed {res.seed}: {res.error}\n  replay: python -m kvetch.raft.sim "
                  f"--seed {res.seed} --steps {res.step}{bug_flag} -v", flush=True)

    if opts.no_progress or (not sys.stdout.isatty() and len(seeds) < 50):
        for s in seeds:
            one(s)
    else:
        from rich.progress import Progress  # only the CLI needs rich

        with Progress(transient=True) as bar:
            task = bar.add_task("raft schedules", total=len(seeds))
            for s in seeds:
                one(s)
                bar.advance(task)
    print(f"liveness: at most {worst[0]} ticks from heal to a committed proposal "
          f"(bound {LIVENESS_TICKS})")
    print(f"{len(seeds)} schedules, {len(failures)} violations")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
