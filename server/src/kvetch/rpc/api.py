"""The transport-neutral API table shared by the gRPC server and the JSON gateway.

The server layer registers one async handler per etcd RPC, keyed by the gRPC
full method name (``/etcdserverpb.KV/Range``). Handlers take and return
protobuf messages and raise :class:`kvetch.server.errors.RPCError` on failure.
``rpc/grpc_server.py`` exposes the table over gRPC; ``rpc/gateway.py`` exposes
the same table as etcd's ``/v3/*`` JSON gateway, so both paths run the same
code and give the same answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

UnaryHandler = Callable[[Any], Awaitable[Message]]
ServerStreamHandler = Callable[[Any], AsyncIterator[Message]]
BidiStreamHandler = Callable[[AsyncIterator[Any]], AsyncIterator[Message]]


@dataclass(frozen=True)
class Method:
    """One RPC: its full name, request/response classes and the handler."""

    full_name: str  # "/etcdserverpb.KV/Range"
    request_type: type[Message]
    response_type: type[Message]
    kind: str  # "unary" | "server_stream" | "bidi_stream"
    handler: Callable[..., Any]

    @property
    def service(self) -> str:
        return self.full_name.split("/")[1]

    @property
    def name(self) -> str:
        return self.full_name.split("/")[2]


@dataclass
class API:
    """All registered methods, by full gRPC name."""

    methods: dict[str, Method] = field(default_factory=dict)

    def add(self, method: Method) -> None:
        if method.full_name in self.methods:
            raise ValueError(f"method registered twice: {method.full_name}")
        self.methods[method.full_name] = method

    def get(self, full_name: str) -> Method | None:
        return self.methods.get(full_name)

    def services(self) -> dict[str, list[Method]]:
        out: dict[str, list[Method]] = {}
        for m in self.methods.values():
            out.setdefault(m.service, []).append(m)
        return out
