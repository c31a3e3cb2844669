"""The call context reaches handlers from a real grpc.aio call (token and peer)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from kvetch.rpc.callctx import current_call, from_grpc, get_call


def test_from_grpc_carries_token_and_peer() -> None:
    seen: list[Any] = []

    async def handler(request: bytes, context: Any) -> bytes:
        token = current_call.set(from_grpc(context))
        try:
            seen.append(get_call())
        finally:
            current_call.reset(token)
        return request

    async def go() -> None:
        srv = grpc.aio.server()
        srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "t.S", {"M": grpc.unary_unary_rpc_method_handler(handler)})])
        port = srv.add_insecure_port("127.0.0.1:0")
        await srv.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                assert await ch.unary_unary("/t.S/M")(b"x", metadata=(("token", "abc.1"),)) == b"x"
        finally:
            await srv.stop(0)

    asyncio.run(go())
    (call,) = seen
    assert call.transport == "grpc" and call.token() == "abc.1" and call.peer.startswith("ipv4:127.0.0.1:")
    assert get_call() is None
