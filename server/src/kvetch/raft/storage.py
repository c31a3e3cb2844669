"""The log storage interface the Raft core reads from, and an in-memory version.

The application owns the storage: it writes what ``Ready`` hands it (entries,
hard state, snapshot) and Raft only reads. The interface is small on purpose so
that a WAL-backed implementation is easy:

- ``initial_state() -> (HardState, ConfState)``: what was persisted at restart.
- ``entries(lo, hi, max_size) -> list[Entry]``: entries [lo, hi), at least one
  if any, limited to ``max_size`` bytes; raise ``Compacted``/``Unavailable``.
- ``term(i) -> int``: term of entry i; valid for ``first_index()-1 <= i <=
  last_index()`` (the snapshot index itself included); raise ``Compacted`` below,
  ``Unavailable`` above.
- ``first_index()`` / ``last_index()``: the available range (first is
  snapshot index + 1; an empty log has first 1, last 0).
- ``snapshot() -> Snapshot``: the most recent snapshot (may raise
  ``SnapshotTemporarilyUnavailable``).
"""

from __future__ import annotations

from typing import Protocol

from .errors import Compacted, SnapOutOfDate, Unavailable
from .types import (
    CONF_ADD_LEARNER_NODE,
    CONF_ADD_NODE,
    ENTRY_CONF_CHANGE,
    ConfChange,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
    limit_size,
)


class Storage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]: ...

    def term(self, i: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


def bootstrap_entries(voters: list[int], learners: list[int]) -> tuple[list[Entry], HardState]:
    """The log every member of a brand-new cluster starts with, as in etcd: one
    committed ConfChange entry per initial member at term 1 (AddNode for voters,
    AddLearnerNode for learners), and the matching hard state. Persist both
    before starting the node; the entries come back as committed entries to
    apply (calling apply_conf_change) like any other. A node joining an existing
    cluster starts from an empty storage instead."""
    from .codec import encode_conf_change  # late: keeps storage importable without protobuf

    ents = []
    for i, (typ, nid) in enumerate([(CONF_ADD_NODE, v) for v in voters]
                                   + [(CONF_ADD_LEARNER_NODE, lr) for lr in learners]):
        cc = ConfChange(type=typ, node_id=nid)
        ents.append(Entry(term=1, index=i + 1, type=ENTRY_CONF_CHANGE, data=encode_conf_change(cc)))
    return ents, HardState(term=1, vote=0, commit=len(ents))


class MemoryStorage:
    """Storage kept in a Python list; ``ents[0]`` is a dummy entry carrying the
    index and term of the last snapshot (or 0/0)."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snap = Snapshot()
        self.ents: list[Entry] = [Entry()]

    def bootstrap(self, voters: list[int], learners: list[int] | None = None) -> None:
        """Initialise an empty storage for a brand-new cluster (see bootstrap_entries)."""
        if self.last_index() != 0 or not self.hard_state.is_empty():
            raise ValueError("can only bootstrap an empty storage")
        ents, hs = bootstrap_entries(voters, learners or [])
        self.append(ents)
        self.set_hard_state(hs)

    # -- the Storage interface -------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        hs = self.hard_state
        cs = self.snap.metadata.conf_state
        return HardState(hs.term, hs.vote, hs.commit), ConfState(list(cs.voters), list(cs.learners))

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self.ents[0].index
        if lo <= offset:
            raise Compacted(lo)
        if hi > offset + len(self.ents):
            raise Unavailable(hi)
        if len(self.ents) == 1:
            return []
        return limit_size(self.ents[lo - offset : hi - offset], max_size)

    def term(self, i: int) -> int:
        offset = self.ents[0].index
        if i < offset:
            raise Compacted(i)
        if i - offset >= len(self.ents):
            raise Unavailable(i)
        return self.ents[i - offset].term

    def first_index(self) -> int:
        return self.ents[0].index + 1

    def last_index(self) -> int:
        return self.ents[0].index + len(self.ents) - 1

    def snapshot(self) -> Snapshot:
        return self.snap

    # -- writers used by the application --------------------------------------
    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = HardState(hs.term, hs.vote, hs.commit)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log by a snapshot (received from the leader)."""
        if self.snap.metadata.index >= snap.metadata.index:
            raise SnapOutOfDate(snap.metadata.index)
        self.snap = snap
        self.ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, i: int, cs: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the application state at applied index i."""
        if i <= self.snap.metadata.index:
            raise SnapOutOfDate(i)
        offset = self.ents[0].index
        if i > self.last_index():
            raise Unavailable(i)
        meta = SnapshotMetadata(index=i, term=self.ents[i - offset].term)
        if cs is not None:
            meta.conf_state = ConfState(list(cs.voters), list(cs.learners))
        self.snap = Snapshot(data=data, metadata=meta)
        return self.snap

    def compact(self, compact_index: int) -> None:
        """Drop entries before compact_index (it becomes the dummy entry)."""
        offset = self.ents[0].index
        if compact_index <= offset:
            raise Compacted(compact_index)
        if compact_index > self.last_index():
            raise Unavailable(compact_index)
        i = compact_index - offset
        first = self.ents[i]
        self.ents = [Entry(term=first.term, index=first.index), *self.ents[i + 1 :]]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, truncating any conflicting suffix first."""
        if not entries:
            return
        first = self.ents[0].index + 1
        last = entries[-1].index
        if last < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self.ents[0].index
        n = len(self.ents)
        if n == offset:
            self.ents.extend(entries)
        elif n > offset:
            del self.ents[offset:]
            self.ents.extend(entries)
        else:
            raise Unavailable(entries[0].index)
