"""The leader's view of each peer (Progress, with the inflight window) and the
configuration tracker (voters, learners, votes, quorum arithmetic).

Joint consensus is not implemented: a configuration is one voter set plus a
learner set, changed one node at a time.
"""

from __future__ import annotations

from collections import deque

from .types import ConfState

PROBE = "StateProbe"
REPLICATE = "StateReplicate"
SNAPSHOT = "StateSnapshot"


class Inflights:
    """Last indexes of the MsgApps sent to a peer in replicate state and not yet acked."""

    __slots__ = ("buf", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf: deque[int] = deque()

    def add(self, last: int) -> None:
        self.buf.append(last)

    def free_le(self, to: int) -> None:
        buf = self.buf
        while buf and buf[0] <= to:
            buf.popleft()

    def free_first_one(self) -> None:
        if self.buf:
            self.buf.popleft()

    def full(self) -> bool:
        return len(self.buf) >= self.size

    def count(self) -> int:
        return len(self.buf)

    def reset(self) -> None:
        self.buf.clear()


class Progress:
    """Replication state of one peer, kept by the leader.

    ``match``: highest index known replicated there; ``next``: next index to send.
    States: probe (one MsgApp per heartbeat until a match is found), replicate
    (pipelined up to the inflight window), snapshot (waiting for a snapshot).
    """

    __slots__ = (
        "inflights", "is_learner", "match", "next", "pending_snapshot", "probe_sent",
        "recent_active", "state",
    )

    def __init__(self, match: int, next_: int, max_inflight: int, is_learner: bool = False) -> None:
        self.match = match
        self.next = next_
        self.state = PROBE
        self.pending_snapshot = 0
        self.recent_active = False
        self.probe_sent = False
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def __repr__(self) -> str:
        return (
            f"Progress({self.state} match={self.match} next={self.next}"
            f"{' learner' if self.is_learner else ''}{' paused' if self.is_paused() else ''}"
            f"{f' pending_snap={self.pending_snapshot}' if self.pending_snapshot else ''}"
            f" inflight={self.inflights.count()})"
        )

    def _reset_state(self, state: str) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state == SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """Record an ack up to n; return whether match advanced."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def optimistic_update(self, n: int) -> None:
        self.next = n + 1

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """Handle a rejection of the append at index ``rejected``; False if stale."""
        if self.state == REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        st = self.state
        if st == REPLICATE:
            return len(self.inflights.buf) >= self.inflights.size
        if st == PROBE:
            return self.probe_sent
        return True


class ProgressTracker:
    """Current configuration (voters, learners) and the leader's Progress per peer."""

    __slots__ = ("learners", "max_inflight", "progress", "voters", "votes")

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.voters: set[int] = set()
        self.learners: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}

    def conf_state(self) -> ConfState:
        return ConfState(voters=sorted(self.voters), learners=sorted(self.learners))

    def is_singleton(self) -> bool:
        return len(self.voters) == 1

    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def committed(self) -> int:
        """Largest index replicated on a quorum of voters."""
        voters = self.voters
        n = len(voters)
        if n == 0:
            return 0
        prs = self.progress
        matches = sorted((prs[v].match if v in prs else 0 for v in voters), reverse=True)
        return matches[n // 2]

    def quorum_active(self) -> bool:
        prs = self.progress
        active = sum(1 for v in self.voters if v in prs and prs[v].recent_active)
        return active >= self.quorum()

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, id_: int, granted: bool) -> None:
        if id_ not in self.votes:
            self.votes[id_] = granted

    def tally_votes(self) -> tuple[int, int, str]:
        """(granted, rejected, result) where result is "won", "lost" or "pending"."""
        granted = rejected = 0
        for v in self.voters:
            r = self.votes.get(v)
            if r is None:
                continue
            if r:
                granted += 1
            else:
                rejected += 1
        return granted, rejected, self.vote_result(self.votes)

    def vote_result(self, votes: dict[int, bool]) -> str:
        q = self.quorum()
        yes = no = 0
        for v in self.voters:
            r = votes.get(v)
            if r is True:
                yes += 1
            elif r is False:
                no += 1
        if yes >= q:
            return "won"
        if len(self.voters) - no >= q:
            return "pending"
        return "lost"
