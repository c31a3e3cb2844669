"""Serve an API table over grpc.aio: generic method handlers, status mapping, request limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from kvetch.rpc.api import API, Method
from kvetch.server import errors

#: Headroom gRPC allows above --max-request-bytes (etcd: grpcOverheadBytes = 512 KiB).
GRPC_OVERHEAD_BYTES = 512 * 1024
#: etcd's maximum gRPC send size (math.MaxInt32).
MAX_SEND_BYTES = 2**31 - 1


def _unary(method: Method, observe: Any) -> grpc.RpcMethodHandler:
    handler = method.handler

    async def call(request: Any, context: aio.ServicerContext) -> Any:
        try:
            resp = await handler(request)
        except errors.RPCError as err:
            observe(method, err.code)
            await context.abort(err.code, err.message)
        observe(method, grpc.StatusCode.OK)
        return resp

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=method.request_type.FromString,
        response_serializer=_serialize,
    )


def _server_stream(method: Method, observe: Any) -> grpc.RpcMethodHandler:
    handler = method.handler

    async def call(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for resp in handler(request):
                yield resp
        except errors.RPCError as err:
            observe(method, err.code)
            await context.abort(err.code, err.message)
        observe(method, grpc.StatusCode.OK)

    return grpc.unary_stream_rpc_method_handler(
        call, request_deserializer=method.request_type.FromString, response_serializer=_serialize)


def _bidi_stream(method: Method, observe: Any) -> grpc.RpcMethodHandler:
    handler = method.handler

    async def call(request_iterator: AsyncIterator[Any], context: aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for resp in handler(request_iterator):
                yield resp
        except errors.RPCError as err:
            observe(method, err.code)
            await context.abort(err.code, err.message)
        observe(method, grpc.StatusCode.OK)

    return grpc.stream_stream_rpc_method_handler(
        call, request_deserializer=method.request_type.FromString, response_serializer=_serialize)


def _serialize(message: Any) -> bytes:
    if isinstance(message, bytes | bytearray):
        return bytes(message)  # pre-encoded responses (hot paths)
    return message.SerializeToString()


class _UnknownMethods(grpc.GenericRpcHandler):
    """Answer unknown methods and services with Go gRPC's messages, as etcd does."""

    def __init__(self, services: set[str]) -> None:
        self.services = services

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        full = handler_call_details.method  # type: ignore[attr-defined]
        parts = full.split("/")
        svc, name = (parts[1], parts[2]) if len(parts) == 3 else (full, "")
        if svc in self.services:
            message = f"unknown method {name} for service {svc}"
        else:
            message = f"unknown service {svc}"

        async def reject(request_iterator: Any, context: aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

        return grpc.stream_stream_rpc_method_handler(
            reject, request_deserializer=lambda b: b, response_serializer=lambda b: b)


def _no_observe(method: Method, code: grpc.StatusCode) -> None:
    return None


def build_grpc_server(api: API, *, max_request_bytes: int, observe: Any = None,
                      interceptors: list[Any] | None = None) -> aio.Server:
    """A grpc.aio server with every method of ``api`` registered (no ports bound yet)."""
    observe = observe or _no_observe
    options = [
        ("grpc.max_receive_message_length", max_request_bytes + GRPC_OVERHEAD_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ("grpc.max_concurrent_streams", 2**31 - 1),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.so_reuseport", 0),
    ]
    server = aio.server(options=options, interceptors=interceptors or [])
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for method in api.methods.values():
        if method.kind == "unary":
            h = _unary(method, observe)
        elif method.kind == "server_stream":
            h = _server_stream(method, observe)
        else:
            h = _bidi_stream(method, observe)
        by_service.setdefault(method.service, {})[method.name] = h
    for svc, handlers in by_service.items():
        # registered methods: gRPC core matches the path itself, no generic-handler lookup per call
        server.add_registered_method_handlers(svc, handlers)
    server.add_generic_rpc_handlers([_UnknownMethods(set(by_service) | {"grpc.health.v1.Health"})])
    _add_health(server)
    return server


def _add_health(server: aio.Server) -> None:
    """grpc.health.v1.Health answering SERVING (etcd registers the standard health service)."""
    try:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    except ImportError:  # grpcio-health-checking is a dependency; keep serving without it
        return
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    import asyncio
    asyncio.get_event_loop().create_task(servicer.set("", health_pb2.HealthCheckResponse.SERVING))
