"""kvetch.client: an asyncio etcd v3 client (balancing, retries, watch resume) and a sync facade."""

from . import errors
from .client import Client
from .errors import (
    CompactedError,
    EtcdError,
    FutureRevisionError,
    LeaseNotFoundError,
    UnavailableError,
)
from .ops import Compare, Op, Txn, prefix_range_end
from .sync import SyncClient
from .transport import TLS
from .watch import Watch, WatchResponse

__all__ = [
    "TLS",
    "Client",
    "CompactedError",
    "Compare",
    "EtcdError",
    "FutureRevisionError",
    "LeaseNotFoundError",
    "Op",
    "SyncClient",
    "Txn",
    "UnavailableError",
    "Watch",
    "WatchResponse",
    "errors",
    "prefix_range_end",
]
