"""Fixtures of the differential tests: a pair of servers, oracle and target.

Side A is always real etcd 3.5.1. Side B is ``KVETCH_DIFF_TARGET``; when that
is unset it is ``kvetch`` if KVETCH_E2E_FLAVOURS selects kvetch, otherwise
``etcd`` (an etcd-vs-etcd run, which proves the harness itself).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from differential.harness import Pair
from e2e_support.flavours import FLAVOURS, flavours_from_env


def diff_target() -> str:
    explicit = os.environ.get("KVETCH_DIFF_TARGET")
    if explicit:
        if explicit not in FLAVOURS:
            raise ValueError(f"KVETCH_DIFF_TARGET={explicit!r}; known: {FLAVOURS}")
        return explicit
    return "kvetch" if "kvetch" in flavours_from_env() else "etcd"


@pytest.fixture
def pair(server_factory) -> Iterator[Pair]:  # type: ignore[no-untyped-def]
    oracle = server_factory("etcd", name="oracle")
    target = server_factory(diff_target(), name="target")
    p = Pair(oracle, target)
    yield p
    p.close()
