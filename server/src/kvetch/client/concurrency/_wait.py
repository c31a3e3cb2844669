"""Waiting for the deletion of the keys that are ahead of us in a queue."""

from __future__ import annotations

from kvetch.api.etcdserverpb import rpc_pb2
from kvetch.api.mvccpb import kv_pb2

from ..client import Client
from ..errors import EtcdError


async def wait_delete(client: Client, key: bytes, rev: int) -> None:
    """Return once ``key`` is deleted at or after revision ``rev``."""
    w = await client.watch(key, start_revision=rev)
    try:
        async for resp in w:
            for ev in resp.events:
                if ev.type == kv_pb2.Event.DELETE:
                    return
    finally:
        await w.cancel()
    raise EtcdError("lost watcher waiting for delete")


async def wait_deletes(client: Client, prefix: bytes, max_create_rev: int) -> rpc_pb2.ResponseHeader:
    """Wait until no key under ``prefix`` has a create revision <= ``max_create_rev``."""
    while True:
        resp = await client.get(
            prefix, prefix=True, sort_target="create", sort_order="descend", limit=1,
            max_create_revision=max_create_rev,
        )
        if not resp.kvs:
            return resp.header
        await wait_delete(client, resp.kvs[0].key, resp.header.revision)
