"""Distributed coordination on KV + watch, wire-compatible with etcd's clientv3/concurrency.

Keys are ``<name>/<lease id in lowercase hex>``; the holder of a mutex (or the
leader of an election) is the key under the prefix with the smallest create
revision, and each waiter waits only for the deletion of the key created just
before its own. So kvetch clients and Go etcd clients (``etcdctl lock``,
``etcdctl elect``) exclude each other correctly.
"""

from .election import Election, NoLeaderError, NotLeaderError
from .mutex import LockedError, Mutex
from .session import Session, SessionExpiredError

__all__ = [
    "Election",
    "LockedError",
    "Mutex",
    "NoLeaderError",
    "NotLeaderError",
    "Session",
    "SessionExpiredError",
]
