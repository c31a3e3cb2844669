"""The Raft log as one node sees it: the stable part in Storage plus an unstable
tail (entries and possibly a snapshot not yet persisted), and the commit and
applied indexes."""

from __future__ import annotations

from .errors import Compacted, RaftError, Unavailable
from .storage import Storage
from .types import Entry, Snapshot, limit_size

NO_LIMIT = 1 << 62


class Unstable:
    """Entries and snapshot handed to the application in Ready but not yet persisted.
    ``entries[i]`` has index ``offset + i``."""

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            snap = self.snapshot
            if snap is not None and snap.metadata.index == i:
                return snap.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, i: int, t: int) -> None:
        gt = self.maybe_term(i)
        if gt is None:
            return
        if gt == t and i >= self.offset:
            del self.entries[: i + 1 - self.offset]
            self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.metadata.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents: list[Entry]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # replace the whole unstable tail
            self.offset = after
            self.entries = list(ents)
        else:
            # keep [offset, after) then append
            self.entries = self.entries[: after - self.offset]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    __slots__ = ("applied", "committed", "max_next_ents_size", "storage", "unstable")

    def __init__(self, storage: Storage, max_next_ents_size: int = NO_LIMIT) -> None:
        self.storage = storage
        self.max_next_ents_size = max_next_ents_size
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applied = first - 1

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, len(unstable)={len(self.unstable.entries)})"
        )

    # -- indexes and terms -----------------------------------------------------
    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        if i is not None:
            return i
        return self.storage.first_index()

    def last_index(self) -> int:
        u = self.unstable
        if u.entries:
            return u.offset + len(u.entries) - 1
        if u.snapshot is not None:
            return u.snapshot.metadata.index
        return self.storage.last_index()

    def last_term(self) -> int:
        return self.term(self.last_index())

    def term(self, i: int) -> int:
        """Term of entry i; 0 when i is outside [first_index-1, last_index]."""
        u = self.unstable
        off = u.offset
        if i >= off:
            k = i - off
            if k < len(u.entries):
                return u.entries[k].term
            return 0
        snap = u.snapshot
        if snap is not None:
            # everything below a pending snapshot is gone
            return snap.metadata.term if snap.metadata.index == i else 0
        try:
            return self.storage.term(i)
        except (Compacted, Unavailable):
            return 0

    def term_or_raise(self, i: int) -> int:
        dummy = self.first_index() - 1
        if i < dummy:
            raise Compacted(i)
        if i > self.last_index():
            raise Unavailable(i)
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        return self.storage.term(i)

    def match_term(self, i: int, t: int) -> bool:
        try:
            return self.term_or_raise(i) == t
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """Whether a log ending at (lasti, term) is at least as up to date as ours (§5.4.1)."""
        our_term = self.last_term()
        return term > our_term or (term == our_term and lasti >= self.last_index())

    # -- appending ---------------------------------------------------------------
    def maybe_append(self, index: int, log_term: int, committed: int, ents: list[Entry]) -> int | None:
        """Append ents after (index, log_term) if that entry matches; return the last
        new index, or None on mismatch (the follower rejects)."""
        if not self.match_term(index, log_term):
            return None
        lastnewi = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise RaftError(f"entry {ci} conflicts with committed entry (committed {self.committed})")
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, lastnewi))
        return lastnewi

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise RaftError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: list[Entry]) -> int:
        """First index whose entry is new or conflicts with ours (0 if none)."""
        if not ents:
            return 0
        last = self.last_index()
        for e in ents:
            if e.index > last:
                return e.index
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """Largest index <= index whose term is <= term (the fast back-off hint)."""
        if index > self.last_index():
            return index
        while index > 0:
            try:
                t = self.term_or_raise(index)
            except (Compacted, Unavailable):
                break
            if t <= term:
                break
            index -= 1
        return index

    # -- reading -----------------------------------------------------------------
    def unstable_entries(self) -> list[Entry]:
        return self.unstable.entries

    def has_next_ents(self) -> bool:
        return self.committed > max(self.applied, self.first_index() - 1)

    def next_ents(self) -> list[Entry]:
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return self.slice(off, self.committed + 1, self.max_next_ents_size)
        return []

    def has_pending_snapshot(self) -> bool:
        s = self.unstable.snapshot
        return s is not None and not s.is_empty()

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i: int, max_size: int) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def slice(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries [lo, hi) limited to max_size bytes; raises Compacted below first_index."""
        if lo > hi:
            raise RaftError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise Compacted(lo)
        if hi > self.last_index() + 1:
            raise Unavailable(hi)
        if lo == hi:
            return []
        u = self.unstable
        ents: list[Entry]
        if lo < u.offset:
            stored = self.storage.entries(lo, min(hi, u.offset), max_size)
            if len(stored) < min(hi, u.offset) - lo:
                return stored
            ents = stored
            if hi > u.offset:
                ents = stored + u.slice(u.offset, hi)
        else:
            ents = u.slice(lo, hi)
        if max_size >= NO_LIMIT:
            return ents
        return limit_size(ents, max_size)

    # -- commit / apply / stable -------------------------------------------------
    def commit_to(self, tocommit: int) -> None:
        if self.committed < tocommit:
            if self.last_index() < tocommit:
                raise RaftError(
                    f"tocommit({tocommit}) is out of range [last_index({self.last_index()})]"
                )
            self.committed = tocommit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to max_index only if that entry is from the current term (§5.4.2)."""
        if max_index > self.committed and self.term(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise RaftError(f"applied({i}) is out of range [prev applied {self.applied}, committed {self.committed}]")
        self.applied = i

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    def restore(self, snap: Snapshot) -> None:
        self.committed = snap.metadata.index
        self.unstable.restore(snap)
