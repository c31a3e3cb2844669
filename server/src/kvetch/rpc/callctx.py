"""Per-call context visible to API handlers, whatever the transport.

Handlers in :mod:`kvetch.rpc.api` take only the request message. What they may
need from the call itself (the auth token, the peer address, the transport)
travels in a :class:`contextvars.ContextVar`: the JSON gateway sets it before
calling a handler, and the gRPC services can set it the same way from the
``grpc.aio.ServicerContext``. Metadata keys are lower case, as in gRPC: the
HTTP ``Authorization`` header arrives as ``authorization`` (etcd accepts the
token under ``token`` or ``authorization``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallContext:
    transport: str  # "grpc" | "http"
    metadata: dict[str, str] = field(default_factory=dict)
    peer: str = ""

    def token(self) -> str | None:
        """The auth token as etcd reads it: metadata ``token``, else ``authorization``."""
        return self.metadata.get("token") or self.metadata.get("authorization") or None


current_call: ContextVar[CallContext | None] = ContextVar("kvetch_current_call", default=None)


def get_call() -> CallContext | None:
    return current_call.get()


def from_grpc(context: object) -> CallContext:
    """The CallContext of a ``grpc.aio.ServicerContext`` (metadata keys are already lower case).

    In ``grpc_server``: ``token = current_call.set(from_grpc(context))`` before calling the
    handler, ``current_call.reset(token)`` after (for streams, around the iteration).
    """
    md: dict[str, str] = {}
    for item in getattr(context, "invocation_metadata", lambda: ())() or ():
        key, value = item[0], item[1]
        if isinstance(value, str):
            md[key] = value
    peer = getattr(context, "peer", lambda: "")() or ""
    return CallContext("grpc", md, peer)
