"""Retry policy on a stand-in server that always answers UNAVAILABLE.

Reads fail over to the next endpoint; a write that reached a server is never
sent again (it may have been applied). The stand-in is a real gRPC server
that only counts calls, because a real etcd cannot be made to fail on demand
after receiving a request.
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from kvetch.client import Client, Op, errors


class Unavailable:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def handler(self) -> grpc.GenericRpcHandler:
        outer = self

        class H(grpc.GenericRpcHandler):
            def service(self, details):  # type: ignore[no-untyped-def,override]
                method = details.method

                async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                    outer.calls.append(method)
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "etcdserver: leader changed")
                    return b""

                return grpc.unary_unary_rpc_method_handler(unary)

        return H()


async def start(stub: Unavailable) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([stub.handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def test_reads_fail_over_writes_are_not_resent() -> None:
    async def main() -> None:
        a, b = Unavailable(), Unavailable()
        sa, ea = await start(a)
        sb, eb = await start(b)
        try:
            async with Client([ea, eb], timeout=None, dial_timeout=2) as c:
                with pytest.raises(errors.UnavailableError) as ei:
                    await c.get("k")
                assert ei.value.message == "etcdserver: leader changed"
                assert a.calls == b.calls == ["/etcdserverpb.KV/Range"]
                a.calls.clear()
                b.calls.clear()
                with pytest.raises(errors.UnavailableError):
                    await c.put("k", "v")
                assert len(a.calls) + len(b.calls) == 1
                with pytest.raises(errors.UnavailableError):
                    await c.txn().then(Op.get("k")).commit()  # a read-only txn is a read
                assert len(a.calls) + len(b.calls) == 3
                with pytest.raises(errors.UnavailableError):
                    await c.txn().then(Op.put("k", "v")).commit()  # a writing txn is not
                assert len(a.calls) + len(b.calls) == 4
        finally:
            await sa.stop(None)
            await sb.stop(None)

    asyncio.run(main())
