"""A seeded random etcd v3 workload, applied to a :class:`Pair` step by step.

Everything random comes from one ``random.Random(seed)``, so a seed names a
workload exactly; the generator looks only at side A's answers (the oracle)
to track the current and compacted revisions and the live lease IDs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from differential.harness import Outcome, Pair
from e2e_support.grpcapi import pb

KEYS = [b"k%02d" % i for i in range(12)] + [b"p/a", b"p/b", b"p/c", b"p/", b"q", b"\xffz", b"k"]
LEASE_IDS = list(range(1, 7))
LEASE_TTL = 600  # long enough that nothing expires during a run
#: etcd 3.5.1's txn overlap check ignores deletes whose range_end is "\0" (from
#: key): it builds the interval [key, "\x00"), which is empty, so a put under
#: such a delete in the same txn is accepted (a bounded delete makes it a
#: "duplicate key"). Set KVETCH_DIFF_TXN_FROM_KEY_DELETES=0 to keep from-key
#: deletes out of txns when a target deliberately rejects those txns and the
#: run should look past that difference.
TXN_FROM_KEY_DELETES = os.environ.get("KVETCH_DIFF_TXN_FROM_KEY_DELETES", "1") != "0"


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for a prefix (the prefix with its last byte incremented)."""
    data = bytearray(prefix)
    for i in range(len(data) - 1, -1, -1):
        if data[i] < 0xFF:
            data[i] += 1
            return bytes(data[: i + 1])
    return b"\0"


class Workload:
    def __init__(self, pair: Pair, seed: int) -> None:
        self.pair = pair
        self.rng = random.Random(seed)
        self.revision = 1
        self.compacted = 0
        self.leases: set[int] = set()
        self.checkpoints = 0

    # -- bookkeeping from the oracle's answers ------------------------------
    def _track(self, out: Outcome) -> Outcome:
        resp = out.response
        if isinstance(resp, dict) and "header" in resp and "revision" in resp["header"]:
            self.revision = max(self.revision, int(resp["header"]["revision"]))
        return out

    # -- random pieces ------------------------------------------------------
    def key(self) -> bytes:
        return self.rng.choice(KEYS)

    def value(self) -> bytes:
        return self.rng.choice([b"", b"v", b"a", b"b", b"zz", bytes([self.rng.randrange(256)]) * 3,
                                str(self.rng.randrange(1000)).encode()])

    def past_revision(self) -> int:
        """A revision around the valid window: mostly valid, sometimes compacted or future."""
        roll = self.rng.random()
        if roll < 0.08:
            return self.revision + self.rng.randint(1, 3)  # future
        if roll < 0.16 and self.compacted > 1:
            return self.rng.randint(1, self.compacted - 1)  # compacted
        return self.rng.randint(max(self.compacted, 1), self.revision)

    def key_range(self) -> tuple[bytes, bytes]:
        roll = self.rng.random()
        if roll < 0.35:
            return self.key(), b""
        if roll < 0.55:
            prefix = self.rng.choice([b"k", b"k0", b"p/", b"k1", b"\xff"])
            return prefix, prefix_end(prefix)
        if roll < 0.65:
            return b"\0", b"\0"  # every key
        if roll < 0.75:
            return self.key(), b"\0"  # from key
        lo, hi = sorted([self.key(), self.key()])
        return lo, (hi if hi != lo else b"")

    def range_request(self) -> pb.RangeRequest:
        key, end = self.key_range()
        r = self.rng
        req = pb.RangeRequest(key=key, range_end=end)
        if r.random() < 0.3:
            req.limit = r.randint(1, 5)
        if r.random() < 0.25:
            req.revision = self.past_revision()
        if r.random() < 0.4:
            req.sort_order = r.choice([pb.RangeRequest.NONE, pb.RangeRequest.ASCEND, pb.RangeRequest.DESCEND])
            req.sort_target = r.choice([pb.RangeRequest.KEY, pb.RangeRequest.VERSION, pb.RangeRequest.CREATE,
                                        pb.RangeRequest.MOD, pb.RangeRequest.VALUE])
        req.serializable = r.random() < 0.2
        req.keys_only = r.random() < 0.15
        req.count_only = r.random() < 0.1
        if r.random() < 0.15:
            req.min_mod_revision = r.randint(0, self.revision)
        if r.random() < 0.15:
            req.max_mod_revision = r.randint(0, self.revision)
        if r.random() < 0.1:
            req.min_create_revision = r.randint(0, self.revision)
        if r.random() < 0.1:
            req.max_create_revision = r.randint(0, self.revision)
        return req

    def put_request(self) -> pb.PutRequest:
        r = self.rng
        req = pb.PutRequest(key=self.key(), value=self.value(), prev_kv=r.random() < 0.3)
        if r.random() < 0.2:
            req.lease = r.choice([*LEASE_IDS, 999])  # 999 never exists
        if r.random() < 0.08:
            req.ignore_value = True
            req.value = b""
        if r.random() < 0.05:
            req.ignore_lease = True
            req.lease = 0
        return req

    def delete_request(self) -> pb.DeleteRangeRequest:
        key, end = self.key_range()
        return pb.DeleteRangeRequest(key=key, range_end=end, prev_kv=self.rng.random() < 0.4)

    def compare(self) -> pb.Compare:
        r = self.rng
        cmp = pb.Compare(key=self.key(), result=r.choice([pb.Compare.EQUAL, pb.Compare.GREATER,
                                                          pb.Compare.LESS, pb.Compare.NOT_EQUAL]))
        if r.random() < 0.15:
            cmp.range_end = r.choice([prefix_end(cmp.key), b"\0", prefix_end(b"k")])
        target = r.choice(["value", "version", "create", "mod", "lease"])
        if target == "value":
            cmp.target, cmp.value = pb.Compare.VALUE, self.value()
        elif target == "version":
            cmp.target, cmp.version = pb.Compare.VERSION, r.randint(0, 3)
        elif target == "create":
            cmp.target, cmp.create_revision = pb.Compare.CREATE, r.randint(0, self.revision)
        elif target == "mod":
            cmp.target, cmp.mod_revision = pb.Compare.MOD, r.randint(0, self.revision)
        else:
            cmp.target, cmp.lease = pb.Compare.LEASE, r.choice([0, *LEASE_IDS])
        return cmp

    def request_op(self, depth: int) -> pb.RequestOp:
        roll = self.rng.random()
        if roll < 0.35:
            put = self.put_request()
            # No ignore_value/ignore_lease inside txns: etcd 3.5.1 panics (and then
            # crash-loops on restart) when such a put follows a from-key delete
            # covering it in the same txn; see test_bad_input.py::test_txn_ignore_value_after_from_key_delete.
            put.ignore_value = put.ignore_lease = False
            return pb.RequestOp(request_put=put)
        if roll < 0.6:
            return pb.RequestOp(request_range=self.range_request())
        if roll < 0.8 or depth >= 2:
            delete = self.delete_request()
            if not TXN_FROM_KEY_DELETES and delete.range_end == b"\0":
                delete.range_end = b"\xff\xff"
            return pb.RequestOp(request_delete_range=delete)
        return pb.RequestOp(request_txn=self.txn_request(depth + 1))

    def txn_request(self, depth: int = 0) -> pb.TxnRequest:
        r = self.rng
        return pb.TxnRequest(
            compare=[self.compare() for _ in range(r.randint(0, 3))],
            success=[self.request_op(depth) for _ in range(r.randint(0, 3))],
            failure=[self.request_op(depth) for _ in range(r.randint(0, 2))],
        )

    # -- steps --------------------------------------------------------------
    def step(self) -> None:
        ops: list[tuple[float, Callable[[], Any]]] = [
            (20, lambda: self.pair.put(self.put_request())),
            (20, lambda: self.pair.range(self.range_request())),
            (8, lambda: self.pair.delete(self.delete_request())),
            (14, lambda: self.pair.txn(self.txn_request())),
            (5, self.lease_op),
            (2, self.compact_op),
            (2, self.watch_op),
            (3, self.checkpoint),
        ]
        total = sum(w for w, _ in ops)
        pick = self.rng.uniform(0, total)
        for weight, fn in ops:
            pick -= weight
            if pick <= 0:
                out = fn()
                if isinstance(out, Outcome):
                    self._track(out)
                return
        ops[-1][1]()

    def lease_op(self) -> Outcome:
        r = self.rng
        lease_id = r.choice(LEASE_IDS)
        roll = r.random()
        if roll < 0.35:
            out = self.pair.lease_grant(pb.LeaseGrantRequest(ID=lease_id, TTL=LEASE_TTL))
            if out.error is None:
                self.leases.add(lease_id)
            return out
        if roll < 0.55:
            out = self.pair.lease_revoke(pb.LeaseRevokeRequest(ID=lease_id))
            self.leases.discard(lease_id)
            return out
        if roll < 0.75:
            return self.pair.lease_ttl(pb.LeaseTimeToLiveRequest(ID=lease_id, keys=r.random() < 0.7))
        if roll < 0.9:
            return self.pair.lease_leases()
        return self.pair.lease_keepalive_once(lease_id)

    def compact_op(self) -> Outcome:
        """Compact, but never past a watch's start revision.

        A watch from an old revision catches up asynchronously (etcd syncs
        unsynced watchers every 100 ms); a compaction landing in that window
        cancels it, one landing after does not. That race is real etcd
        behaviour, not a difference to report, so compactions stay at or below
        every watch's start revision (watches created from an already
        compacted revision are still covered: they are canceled at once).
        """
        r = self.rng
        ceiling = self.revision + (1 if r.random() < 0.1 else 0)
        starts = [c.start_revision for c in self.pair.watch_creates if c.start_revision >= self.compacted]
        if starts:
            ceiling = min(ceiling, *starts)
        target = r.randint(max(self.compacted - 1, 1), max(ceiling, 1))
        out = self.pair.compact(pb.CompactionRequest(revision=target, physical=r.random() < 0.5))
        if out.error is None:
            self.compacted = max(self.compacted, target)
        return out

    def watch_op(self) -> None:
        if len(self.pair.watches) >= 6:
            return
        key, end = self.key_range()
        r = self.rng
        create = pb.WatchCreateRequest(key=key, range_end=end, prev_kv=r.random() < 0.5)
        if r.random() < 0.6:
            create.start_revision = r.randint(max(self.compacted - 2, self.revision - 25, 1), self.revision + 1)
        else:
            # from "now": pin it to the oracle's current revision + 1 so both sides agree
            create.start_revision = self.revision + 1
        if r.random() < 0.2:
            create.filters.append(r.choice([pb.WatchCreateRequest.NOPUT, pb.WatchCreateRequest.NODELETE]))
        self.pair.open_watch(create)

    def checkpoint(self) -> None:
        """HashKV at the current revision and at one past revision must agree."""
        self.checkpoints += 1
        self._track(self.pair.hashkv_settled(0))
        self.pair.hashkv_settled(self.rng.randint(max(self.compacted, 1), self.revision))

    def finish(self) -> None:
        """Final comparison: hashes, full contents, then every watch stream."""
        self.checkpoint()
        self.pair.range(pb.RangeRequest(key=b"\0", range_end=b"\0"), what="final full Range")
        self.pair.lease_leases()
        # a put+delete of the first key of every watch's range lets each watch
        # prove it caught up (one of the two passes any single filter)
        writes: list[tuple[bytes, int, int]] = []  # key, put revision, delete revision
        for create in self.pair.watch_creates:
            self._track(self.pair.put(pb.PutRequest(key=create.key, value=b"sentinel")))
            put_rev = self.revision
            self._track(self.pair.delete(pb.DeleteRangeRequest(key=create.key)))
            writes.append((create.key, put_rev, self.revision))
        until = [max(_visible_revisions(create, writes), default=0) for create in self.pair.watch_creates]
        self.pair.compare_watches(until)


def _in_range(key: bytes, create: pb.WatchCreateRequest) -> bool:
    if not create.range_end:
        return key == create.key
    if create.range_end == b"\0":
        return key >= create.key
    return create.key <= key < create.range_end


def _visible_revisions(create: pb.WatchCreateRequest, writes: list[tuple[bytes, int, int]]) -> list[int]:
    """Revisions of sentinel events this watch must deliver (after its filters)."""
    revs: list[int] = []
    for key, put_rev, del_rev in writes:
        if not _in_range(key, create):
            continue
        if pb.WatchCreateRequest.NOPUT not in create.filters:
            revs.append(put_rev)
        if pb.WatchCreateRequest.NODELETE not in create.filters:
            revs.append(del_rev)
    return revs
