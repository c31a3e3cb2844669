"""kvetch.client: an asyncio etcd v3 client (balancing, retries, watch resume) and a sync facade.

    async with Client(["127.0.0.1:2379"], timeout=5) as c:
        await c.put("k", "v", prev_kv=True)
        r = await c.get("k", prefix=True, sort_order="descend", keys_only=True)
        t = await c.txn().if_(Compare.value("k", "=", "v")).then(Op.put("x", "1")).else_(Op.get("k")).commit()
        w = await c.watch("k", prefix=True, start_revision=r.header.revision + 1, prev_kv=True)
        async for ev in w.events(): ...
        lease = await c.lease.grant(10)
        async for ka in c.lease.keep_alive(lease.ID): ...

Responses are the etcd protobuf messages (``rpc_pb2.RangeResponse``, ...);
failures are :mod:`kvetch.client.errors` exceptions carrying etcd's message.
``kvetch.client.concurrency`` has Session, Mutex and Election;
``SyncClient`` is the same API, blocking.
"""

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
