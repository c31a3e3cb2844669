"""Linearizability checker for the etcd KV model (WGL search, as porcupine does).

Histories are partitioned per key (linearizability is compositional and the
workload's ops each touch one key); each partition is searched with the
Wing-Gong-Lowe algorithm plus a cache of (linearized set, state) pairs, which
prunes the search to a few thousand states on real histories.  Ops whose
outcome is unknown have no return event: they may take effect at any point
after their invocation, or never.  A separate pass checks that revisions are
consistent with real time across all keys.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .history import Op

#: Register state: (value or None when absent, mod revision or None when unknown)
State = tuple[str | None, int | None]
INIT: State = (None, 0)


def step(state: State, op: Op) -> tuple[bool, State]:
    """Apply `op` to `state`; return (consistent with the recorded output, next state)."""
    value, mod = state
    known = op.outcome == "ok"
    if op.kind == "get":
        if op.out_value != value:
            return False, state
        if value is not None and mod is not None and op.out_mod_rev != mod:
            return False, state
        if value is not None and mod is None:  # learn the revision an unknown write got
            return True, (value, op.out_mod_rev)
        return True, state
    if op.kind in ("put", "lease-put"):
        if known:
            if mod is not None and op.revision <= mod:
                return False, state
            return True, (op.value, op.revision)
        return True, (op.value, None)
    if op.kind in ("delete", "lease-revoke"):
        if known and op.kind == "delete" and (op.deleted or 0) != (0 if value is None else 1):
            return False, state
        if value is None:
            return True, state
        return True, (None, op.revision if known and op.kind == "delete" else None)
    if op.kind == "cas":
        holds = value == op.expected
        if known:
            if bool(op.succeeded) != holds:
                return False, state
            if holds:
                if mod is not None and op.revision <= mod:
                    return False, state
                return True, (op.value, op.revision)
            if op.out_value != value:
                return False, state
            return True, state
        return True, ((op.value, None) if holds else state)
    raise ValueError(f"unknown op kind {op.kind}")


@dataclass
class _Entry:
    op: Op
    is_call: bool
    time: float
    prev: _Entry | None = None
    next: _Entry | None = None
    match: _Entry | None = None  # call -> its return (None for unknown outcome)


@dataclass
class PartitionResult:
    key: str
    ok: bool
    ops: int
    states_explored: int
    #: on failure: the op whose return could not be linearized and the ops concurrent with it
    culprit: Op | None = None
    context: list[Op] = field(default_factory=list)
    timed_out: bool = False


def check_partition(key: str, ops: list[Op], max_states: int = 2_000_000) -> PartitionResult:
    ops = [o for o in ops if o.outcome == "ok" or (o.outcome == "unknown" and o.is_write())]
    ops.sort(key=lambda o: o.call)
    index = {o.id: i for i, o in enumerate(ops)}
    events: list[_Entry] = []
    for o in ops:
        c = _Entry(o, True, o.call)
        events.append(c)
        if o.outcome == "ok":
            r = _Entry(o, False, o.ret if o.ret is not None else float("inf"))
            c.match = r
            events.append(r)
    # calls before returns at equal times: the more permissive order
    events.sort(key=lambda e: (e.time, 0 if e.is_call else 1))
    head = _Entry(ops[0] if ops else Op(-1, "", "get", key), True, float("-inf"))
    prev = head
    for e in events:
        prev.next, e.prev = e, prev
        prev = e
    remaining = sum(1 for e in events if not e.is_call)

    def lift(e: _Entry) -> None:
        assert e.prev is not None
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        m = e.match
        if m is not None:
            assert m.prev is not None
            m.prev.next = m.next
            if m.next:
                m.next.prev = m.prev

    def unlift(e: _Entry) -> None:
        m = e.match
        if m is not None:
            assert m.prev is not None
            m.prev.next = m
            if m.next:
                m.next.prev = m
        assert e.prev is not None
        e.prev.next = e
        if e.next:
            e.next.prev = e

    state: State = INIT
    linearized = 0
    cache: set[tuple[int, State]] = set()
    calls: list[tuple[_Entry, State]] = []
    entry = head.next
    explored = 0
    best: tuple[int, Op | None] = (0, None)
    while True:
        if remaining == 0:
            return PartitionResult(key, True, len(ops), explored)
        if explored > max_states:
            return PartitionResult(key, True, len(ops), explored, timed_out=True)
        if entry is None:
            entry = _backtrack_marker
        if entry is not _backtrack_marker and entry.is_call:
            explored += 1
            ok, nxt = step(state, entry.op)
            if ok:
                bit = 1 << index[entry.op.id]
                key_ = (linearized | bit, nxt)
                if key_ not in cache:
                    cache.add(key_)
                    calls.append((entry, state))
                    state, linearized = nxt, linearized | bit
                    lift(entry)
                    if entry.match is not None:
                        remaining -= 1
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # a return whose op is not linearized yet (or the end): backtrack
        if entry is not _backtrack_marker and len(calls) >= best[0]:
            best = (len(calls), entry.op)
        if not calls:
            culprit = best[1]
            ctx: list[Op] = []
            if culprit is not None:
                end = culprit.ret or culprit.call
                ctx = [o for o in ops if o.call <= end and (o.ret is None or o.ret >= culprit.call - 0.5)]
            return PartitionResult(key, False, len(ops), explored, culprit, ctx[:30])
        call, state = calls.pop()
        linearized &= ~(1 << index[call.op.id])
        unlift(call)
        if call.match is not None:
            remaining += 1
        entry = call.next


_backtrack_marker = _Entry(Op(-2, "", "get", ""), False, 0.0)


@dataclass
class LinearizabilityResult:
    ok: bool
    partitions: list[PartitionResult]
    revision_errors: list[str]
    ops_checked: int

    def summary(self) -> str:
        bad = [p for p in self.partitions if not p.ok]
        parts = [f"{self.ops_checked} ops in {len(self.partitions)} keys"]
        if bad:
            parts.append("not linearizable on " + ", ".join(p.key for p in bad))
        if self.revision_errors:
            parts.append(f"{len(self.revision_errors)} revision-order violations")
        if any(p.timed_out for p in self.partitions):
            parts.append("search budget exhausted on " + ", ".join(p.key for p in self.partitions if p.timed_out))
        return "; ".join(parts)


def check_revisions(ops: list[Op]) -> list[str]:
    """Across keys: acknowledged writes have distinct revisions that follow real time."""
    errors: list[str] = []
    writes = [o for o in ops if o.outcome == "ok" and _bumps(o)]
    seen: dict[int, Op] = {}
    for w in writes:
        if w.revision in seen:
            errors.append(f"revision {w.revision} given to two writes: #{seen[w.revision].id} and #{w.id}")
        seen[w.revision] = w
    done = sorted((o for o in writes if o.ret is not None), key=lambda o: o.ret or 0.0)
    acked = [o for o in ops if o.outcome == "ok"]
    acked.sort(key=lambda o: o.call)
    i, best = 0, None
    for o in acked:
        while i < len(done) and (done[i].ret or 0.0) < o.call:
            if best is None or done[i].revision > best.revision:
                best = done[i]
            i += 1
        if best is None:
            continue
        limit_ok = o.revision > best.revision if _bumps(o) else o.revision >= best.revision
        if not limit_ok:
            errors.append(f"#{o.id} ({o.kind} {o.key}) has revision {o.revision} but #{best.id} got revision "
                          f"{best.revision} and returned before it was invoked")
    return errors[:50]


def _bumps(o: Op) -> bool:
    if o.kind in ("put", "lease-put"):
        return True
    if o.kind == "cas":
        return bool(o.succeeded)
    if o.kind == "delete":
        return bool(o.deleted)
    return False


def check(ops: list[Op]) -> LinearizabilityResult:
    by_key: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    parts = [check_partition(k, v) for k, v in sorted(by_key.items())]
    rev = check_revisions(ops)
    n = sum(p.ops for p in parts)
    return LinearizabilityResult(all(p.ok for p in parts) and not rev, parts, rev, n)
