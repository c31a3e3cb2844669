"""Test harness for kvetch.raft: an in-memory cluster driven message by message."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from kvetch.raft import Config, ConfState, MemoryStorage, Message, RawNode, ReadState
from kvetch.raft.codec import decode_conf_change
from kvetch.raft.types import ENTRY_CONF_CHANGE, ENTRY_NORMAL


@dataclass
class Member:
    id: int
    storage: MemoryStorage
    cfg: dict[str, object]
    rn: RawNode
    applied: list[tuple[int, int, bytes]] = field(default_factory=list)
    reads: list[ReadState] = field(default_factory=list)
    conf: ConfState = field(default_factory=ConfState)


class Cluster:
    """Nodes 1..n over a perfect network unless filtered; ``stabilize`` runs every
    Ready and delivers every message until nothing moves."""

    def __init__(self, voters: list[int], learners: list[int] | None = None, **cfg: object) -> None:
        self.members: dict[int, Member] = {}
        self.cut: set[tuple[int, int]] = set()
        self.drop_types: set[int] = set()
        self.sent: list[Message] = []
        self.queue: list[Message] = []
        self.hold = False  # when True, messages stay queued until deliver()
        for i in voters + (learners or []):
            st = MemoryStorage()
            st.bootstrap(voters, learners or [])
            self._add(i, st, cfg)
        self.stabilize()

    def _add(self, i: int, st: MemoryStorage, cfg: dict[str, object]) -> Member:
        opts: dict[str, object] = {"election_tick": 10, "heartbeat_tick": 1}
        opts.update(cfg)
        rn = RawNode(Config(id=i, storage=st, rng=random.Random(i),
                            applied=st.snapshot().metadata.index, **opts))  # type: ignore[arg-type]
        m = Member(i, st, cfg, rn)
        self.members[i] = m
        return m

    def add_empty(self, i: int, **cfg: object) -> Member:
        """A brand-new node joining an existing cluster (empty storage)."""
        return self._add(i, MemoryStorage(), cfg)

    def restart(self, i: int) -> Member:
        """Crash node i (losing everything not persisted) and start it from storage."""
        old = self.members[i]
        self.queue = [m for m in self.queue if m.to != i and m.frm != i]
        return self._add(i, old.storage, old.cfg)

    def __getitem__(self, i: int) -> RawNode:
        return self.members[i].rn

    def raft(self, i: int):  # type: ignore[no-untyped-def]
        return self.members[i].rn.raft

    def isolate(self, i: int) -> None:
        for j in self.members:
            if j != i:
                self.cut.add((i, j))
                self.cut.add((j, i))

    def heal(self) -> None:
        self.cut.clear()
        self.drop_types.clear()

    def process(self, i: int) -> bool:
        m = self.members[i]
        rn = m.rn
        if not rn.has_ready():
            return False
        rd = rn.ready()
        if rd.snapshot is not None:
            m.storage.apply_snapshot(rd.snapshot)
            m.applied.append((rd.snapshot.metadata.index, -1, b"<snapshot>"))
            m.conf = rd.snapshot.metadata.conf_state
        m.storage.append(rd.entries)
        if rd.hard_state is not None:
            m.storage.set_hard_state(rd.hard_state)
        for msg in rd.messages:
            self.sent.append(msg)
            if (msg.frm, msg.to) in self.cut or msg.type in self.drop_types:
                continue
            self.queue.append(msg)
        for e in rd.committed_entries:
            if e.type == ENTRY_CONF_CHANGE:
                m.conf = rn.apply_conf_change(decode_conf_change(e.data))
            elif e.type == ENTRY_NORMAL and e.data:
                m.applied.append((e.index, e.term, e.data))
        m.reads.extend(rd.read_states)
        rn.advance(rd)
        return True

    def deliver(self, pred: Callable[[Message], bool] | None = None) -> int:
        """Deliver queued messages (those matching pred); return how many."""
        keep, todo = [], []
        for msg in self.queue:
            (todo if pred is None or pred(msg) else keep).append(msg)
        self.queue = keep
        for msg in todo:
            if msg.to in self.members:
                self.members[msg.to].rn.step(msg)
        return len(todo)

    def stabilize(self, limit: int = 1000) -> None:
        for _ in range(limit):
            moved = False
            for i in list(self.members):
                moved |= self.process(i)
            if not self.hold and self.queue:
                self.deliver()
                moved = True
            if not moved:
                return
        raise AssertionError("cluster did not stabilize")

    def tick(self, i: int, n: int = 1) -> None:
        for _ in range(n):
            self.members[i].rn.tick()
            self.stabilize()

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for m in self.members.values():
                m.rn.tick()
            self.stabilize()

    def elect(self, i: int) -> None:
        self[i].campaign()
        self.stabilize()
        assert self[i].is_leader, f"{i} did not win: {self[i].status()}"

    def leaders(self) -> list[int]:
        return [i for i, m in self.members.items() if m.rn.is_leader]

    def propose(self, i: int, data: bytes) -> None:
        self[i].propose(data)
        self.stabilize()


@pytest.fixture
def cluster() -> type[Cluster]:
    return Cluster
