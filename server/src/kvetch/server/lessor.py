"""Leases: in-memory lease table, expiry queue of the primary, attached keys.

State changes that must be agreed by every member (grant, revoke, checkpoint)
happen in the apply loop; the caller persists them to the backend's lease
bucket in the same write transaction. Renewal (keep-alive) and expiry are the
primary's business: only the primary (the leader, or the single member) has
real deadlines; other members hold every lease "forever" until promoted.

When the primary is demoted its expiry queue is dropped: etcd 3.5 once kept
queue items alive on followers and leaked memory (the test
``test_demote_clears_expiry_queue`` guards against that bug class).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kvetch.server import errors

#: etcd's MaxLeaseTTL: 9,000,000,000 seconds.
MAX_LEASE_TTL = 9_000_000_000
NO_LEASE = 0


@dataclass
class Lease:
    id: int
    ttl: int  # granted TTL in seconds (after raising to the minimum)
    remaining_ttl: int = 0  # last checkpointed remaining TTL (0 = none)
    expiry: float = math.inf  # monotonic deadline; inf while not primary
    keys: set[bytes] = field(default_factory=set)

    def effective_ttl(self) -> int:
        return self.remaining_ttl if self.remaining_ttl > 0 else self.ttl


class Lessor:
    """The lease table of one member."""

    def __init__(self, min_ttl: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_ttl = min_ttl
        self.clock = clock
        self.leases: dict[int, Lease] = {}
        self.primary = False
        # (deadline, lease id) items; stale items are skipped lazily.
        self._queue: list[tuple[float, int]] = []

    # --- applied through the log -------------------------------------------
    def grant(self, lease_id: int, ttl: int) -> Lease:
        if lease_id == NO_LEASE:
            raise errors.LEASE_NOT_FOUND
        if ttl > MAX_LEASE_TTL:
            raise errors.LEASE_TTL_TOO_LARGE
        if lease_id in self.leases:
            raise errors.LEASE_EXIST
        lease = Lease(id=lease_id, ttl=max(ttl, self.min_ttl))
        self.leases[lease_id] = lease
        if self.primary:
            self._refresh(lease, 0.0)
        return lease

    def revoke(self, lease_id: int) -> Lease:
        """Forget a lease; the caller deletes ``lease.keys`` in the same revision."""
        lease = self.leases.pop(lease_id, None)
        if lease is None:
            raise errors.LEASE_NOT_FOUND
        return lease

    def checkpoint(self, lease_id: int, remaining_ttl: int) -> Lease | None:
        lease = self.leases.get(lease_id)
        if lease is None:
            return None
        lease.remaining_ttl = remaining_ttl
        if self.primary:
            self._refresh(lease, 0.0)
        return lease

    def restore(self, lease_id: int, ttl: int, remaining_ttl: int) -> Lease:
        """Load a persisted lease on start (not primary yet)."""
        lease = Lease(id=lease_id, ttl=max(ttl, self.min_ttl), remaining_ttl=remaining_ttl)
        self.leases[lease_id] = lease
        return lease

    # --- key attachment ------------------------------------------------------
    def attach(self, lease_id: int, key: bytes) -> None:
        lease = self.leases.get(lease_id)
        if lease is not None:
            lease.keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self.leases.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)

    def lookup(self, lease_id: int) -> Lease | None:
        return self.leases.get(lease_id)

    # --- primary only --------------------------------------------------------
    def promote(self, extend: float = 0.0) -> None:
        """Become primary: every lease gets a real deadline from its (checkpointed) TTL."""
        self.primary = True
        self._queue = []
        for lease in self.leases.values():
            self._refresh(lease, extend)

    def demote(self) -> None:
        """Stop being primary: forget deadlines and the whole expiry queue."""
        self.primary = False
        self._queue = []
        for lease in self.leases.values():
            lease.expiry = math.inf

    def renew(self, lease_id: int) -> int:
        """Keep-alive on the primary: push the deadline to now + TTL; returns the TTL."""
        lease = self.leases.get(lease_id)
        if lease is None:
            raise errors.LEASE_NOT_FOUND
        if lease.expiry <= self.clock():
            # Expired: its revocation is on its way through the log.
            raise errors.LEASE_NOT_FOUND
        lease.remaining_ttl = 0
        self._refresh(lease, 0.0)
        return lease.ttl

    def remaining(self, lease: Lease) -> float:
        if lease.expiry == math.inf:
            return float(lease.effective_ttl())
        return lease.expiry - self.clock()

    def expired(self, limit: int = 1000) -> list[int]:
        """IDs of leases whose deadline has passed (primary only), at most ``limit``."""
        now = self.clock()
        out: list[int] = []
        queue = self._queue
        while queue and len(out) < limit and queue[0][0] <= now:
            deadline, lease_id = heapq.heappop(queue)
            lease = self.leases.get(lease_id)
            if lease is None or lease.expiry != deadline:
                continue  # revoked or renewed since
            out.append(lease_id)
            # retry later if the revoke does not make it through
            lease.expiry = now + 3.0
            heapq.heappush(queue, (lease.expiry, lease_id))
        return out

    def queue_size(self) -> int:
        return len(self._queue)

    def checkpoints_due(self) -> list[tuple[int, int]]:
        """(id, remaining seconds) for every lease, for a periodic checkpoint round."""
        now = self.clock()
        out = []
        for lease in self.leases.values():
            if lease.expiry != math.inf:
                out.append((lease.id, max(1, int(lease.expiry - now))))
        return out

    def _refresh(self, lease: Lease, extend: float) -> None:
        lease.expiry = self.clock() + extend + lease.effective_ttl()
        heapq.heappush(self._queue, (lease.expiry, lease.id))
        if len(self._queue) > 4 * max(16, len(self.leases)):
            self._compact_queue()

    def _compact_queue(self) -> None:
        live = {i: d for d, i in self._queue if i in self.leases and self.leases[i].expiry == d}
        self._queue = [(d, i) for i, d in live.items()]
        heapq.heapify(self._queue)

    def ids(self) -> Iterable[int]:
        return self.leases.keys()
