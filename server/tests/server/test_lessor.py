"""Lease table rules: TTL bounds, renewal, expiry, and no expiry queue left behind on demotion."""

from __future__ import annotations

import pytest
from kvetch.server import errors
from kvetch.server.lessor import MAX_LEASE_TTL, Lessor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_grant_raises_ttl_to_minimum_and_rejects_duplicates_and_huge_ttls() -> None:
    lessor = Lessor(min_ttl=2, clock=Clock())
    assert lessor.grant(1, 1).ttl == 2
    with pytest.raises(errors.RPCError) as e:
        lessor.grant(1, 10)
    assert e.value == errors.LEASE_EXIST
    with pytest.raises(errors.RPCError) as e:
        lessor.grant(2, MAX_LEASE_TTL + 1)
    assert e.value == errors.LEASE_TTL_TOO_LARGE


def test_primary_expires_leases_and_renewal_pushes_the_deadline() -> None:
    clock = Clock()
    lessor = Lessor(min_ttl=1, clock=clock)
    lessor.promote()
    lessor.grant(7, 10)
    clock.now += 9
    assert lessor.expired() == []
    assert lessor.renew(7) == 10
    clock.now += 9
    assert lessor.expired() == []
    clock.now += 2
    assert lessor.expired() == [7]


def test_non_primary_never_expires() -> None:
    clock = Clock()
    lessor = Lessor(min_ttl=1, clock=clock)
    lessor.grant(7, 5)
    clock.now += 100
    assert lessor.expired() == []


def test_demote_clears_expiry_queue() -> None:
    """etcd 3.5 leaked expiry-queue items on followers; a demoted lessor must hold none."""
    lessor = Lessor(min_ttl=1, clock=Clock())
    lessor.promote()
    for i in range(1, 101):
        lessor.grant(i, 60)
    for _ in range(5):
        for i in range(1, 101):
            lessor.renew(i)
    assert lessor.queue_size() > 0
    lessor.demote()
    assert lessor.queue_size() == 0
    # renewals while primary do not grow the queue without bound either
    lessor.promote()
    for _ in range(50):
        for i in range(1, 101):
            lessor.renew(i)
    assert lessor.queue_size() <= 4 * 100 + 100


def test_checkpointed_remaining_ttl_is_used_after_restart() -> None:
    clock = Clock()
    lessor = Lessor(min_ttl=1, clock=clock)
    lessor.restore(3, ttl=60, remaining_ttl=12)
    lessor.promote()
    lease = lessor.lookup(3)
    assert lease is not None
    assert lessor.remaining(lease) == pytest.approx(12)


def test_revoke_returns_attached_keys() -> None:
    lessor = Lessor(min_ttl=1, clock=Clock())
    lessor.grant(5, 30)
    lessor.attach(5, b"a")
    lessor.attach(5, b"b")
    lessor.detach(5, b"a")
    assert lessor.revoke(5).keys == {b"b"}
    with pytest.raises(errors.RPCError) as e:
        lessor.revoke(5)
    assert e.value == errors.LEASE_NOT_FOUND
