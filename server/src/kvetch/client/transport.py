"""Endpoint balancing and unary calls: round-robin, failover, safe retries, auth token.

Policy (the same spirit as etcd's clientv3):

* every call starts at the next endpoint in round-robin order, skipping
  endpoints that failed recently;
* an idempotent call (reads, status, lists) that fails with UNAVAILABLE is
  retried on the next endpoint until the deadline;
* a non-idempotent call (writes) moves to another endpoint only when the
  connection to the endpoint could not be established, i.e. when the request
  certainly never left the client; once sent, its error goes to the caller;
* with a user name and password, the auth token is fetched lazily and
  refreshed once when the server says it is invalid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from kvetch.api.etcdserverpb import rpc_pb2

from . import errors

M = TypeVar("M", bound=Message)

#: seconds an endpoint that failed is skipped by the round robin
DOWN_BACKOFF = 1.0

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", 2 * 1024 * 1024 * 1024 - 1),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 10000),
]

_INVALID_TOKEN = "etcdserver: invalid auth token"


def parse_endpoint(ep: str) -> tuple[str, bool]:
    """Return (gRPC target, secure) for ``host:port``, ``http://host:port`` or ``https://...``."""
    ep = ep.strip()
    if ep.startswith("https://"):
        return ep[len("https://") :].rstrip("/"), True
    if ep.startswith("http://"):
        return ep[len("http://") :].rstrip("/"), False
    if ep.startswith(("unix://", "unix:")):
        return ep, False
    return ep.rstrip("/"), False


@dataclass(frozen=True)
class TLS:
    """Client TLS material (PEM bytes); any of them may be None (system roots, no client cert)."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    @classmethod
    def from_files(cls, ca: str | None = None, cert: str | None = None, key: str | None = None) -> TLS:
        def read(p: str | None) -> bytes | None:
            if not p:
                return None
            with open(p, "rb") as f:
                return f.read()

        return cls(read(ca), read(cert), read(key))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


@dataclass
class Endpoint:
    """One server address and its (lazily created) channel."""

    url: str
    target: str
    secure: bool
    tls: TLS | None = None
    channel: grpc.aio.Channel | None = None
    down_until: float = 0.0
    stubs: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def get_channel(self) -> grpc.aio.Channel:
        if self.channel is None:
            if self.secure or self.tls is not None:
                creds = (self.tls or TLS()).credentials()
                self.channel = grpc.aio.secure_channel(self.target, creds, options=CHANNEL_OPTIONS)
            else:
                self.channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        return self.channel

    def method(self, full_name: str, response_cls: type[Message], kind: str = "unary") -> Callable[..., Any]:
        key = f"{kind}:{full_name}"
        stub = self.stubs.get(key)
        if stub is None:
            ch = self.get_channel()
            des = response_cls.FromString
            if kind == "unary":
                stub = ch.unary_unary(full_name, request_serializer=_ser, response_deserializer=des)
            elif kind == "stream":
                stub = ch.unary_stream(full_name, request_serializer=_ser, response_deserializer=des)
            else:
                stub = ch.stream_stream(full_name, request_serializer=_ser, response_deserializer=des)
            self.stubs[key] = stub
        return stub

    async def close(self) -> None:
        ch, self.channel = self.channel, None
        self.stubs.clear()
        if ch is not None:
            await ch.close()


def _ser(msg: Message) -> bytes:
    return msg.SerializeToString()


class Transport:
    """The set of endpoints of one client and the calling policy over them."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        timeout: float | None = None,
        dial_timeout: float = 5.0,
        user: str | None = None,
        password: str | None = None,
        tls: TLS | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.tls = tls
        self.endpoints = [Endpoint(ep, *parse_endpoint(ep), tls=tls) for ep in endpoints]
        self.timeout = timeout
        self.dial_timeout = dial_timeout
        self.user = user
        self.password = password
        self._token: str | None = None
        self._auth_lock: asyncio.Lock | None = None
        self._rr = 0
        self.closed = False

    # -- endpoint choice ------------------------------------------------------
    def order(self) -> list[Endpoint]:
        """Endpoints to try for the next call: round robin, recently failed ones last."""
        n = len(self.endpoints)
        start = self._rr % n
        self._rr += 1
        rotated = self.endpoints[start:] + self.endpoints[:start]
        now = time.monotonic()
        up = [e for e in rotated if e.down_until <= now]
        down = [e for e in rotated if e.down_until > now]
        return up + down

    def mark_down(self, ep: Endpoint) -> None:
        ep.down_until = time.monotonic() + DOWN_BACKOFF

    def find(self, url: str) -> Endpoint:
        for e in self.endpoints:
            if url in (e.url, e.target):
                return e
        target, secure = parse_endpoint(url)
        ep = Endpoint(url, target, secure, tls=self.tls)
        self.endpoints.append(ep)
        return ep

    @staticmethod
    def _failing(ep: Endpoint) -> bool:
        if ep.channel is None:
            return False
        return ep.channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.TRANSIENT_FAILURE

    async def connect(self, ep: Endpoint, deadline: float | None) -> bool:
        """Wait until ``ep``'s channel is ready (bounded by the dial timeout and ``deadline``)."""
        ch = ep.get_channel()
        if ch.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return True
        limit = self.dial_timeout
        if deadline is not None:
            limit = min(limit, max(0.0, deadline - time.monotonic()))
        try:
            await asyncio.wait_for(ch.channel_ready(), limit)
            return True
        except TimeoutError:
            self.mark_down(ep)
            return False

    # -- auth -----------------------------------------------------------------
    async def metadata(self, ep: Endpoint, deadline: float | None, refresh: bool = False) -> list[tuple[str, str]]:
        if not self.user:
            return []
        if self._auth_lock is None:
            self._auth_lock = asyncio.Lock()
        async with self._auth_lock:
            if self._token is None or refresh:
                stub = ep.method("/etcdserverpb.Auth/Authenticate", rpc_pb2.AuthenticateResponse)
                req = rpc_pb2.AuthenticateRequest(name=self.user, password=self.password or "")
                try:
                    resp = await stub(req, timeout=_remaining(deadline))
                except grpc.aio.AioRpcError as e:
                    raise errors.from_rpc_error(e) from None
                self._token = resp.token
        return [("token", self._token or "")]

    # -- calls ----------------------------------------------------------------
    def deadline(self, timeout: float | None) -> float | None:
        t = self.timeout if timeout is None else timeout
        if t is None or t <= 0:
            return None
        return time.monotonic() + t

    async def unary(
        self,
        method: str,
        request: Message,
        response_cls: type[M],
        *,
        idempotent: bool,
        timeout: float | None = None,
        endpoint: str | None = None,
    ) -> M:
        """Call ``method`` (``Service/Method``) with the balancing and retry policy."""
        if self.closed:
            raise errors.ClientClosedError("client is closed")
        full = f"/etcdserverpb.{method}"
        deadline = self.deadline(timeout)
        last: errors.EtcdError | None = None
        connect_failed = False
        while True:
            candidates = [self.find(endpoint)] if endpoint else self.order()
            for i, ep in enumerate(candidates):
                if i < len(candidates) - 1 and self._failing(ep):
                    # known to be unreachable right now: do not spend the dial timeout on it
                    self.mark_down(ep)
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    if last is None or connect_failed:
                        raise errors.DeadlineExceededError(
                            "context deadline exceeded", grpc.StatusCode.DEADLINE_EXCEEDED
                        )
                    raise last
                if not await self.connect(ep, deadline):
                    connect_failed = True
                    last = errors.UnavailableError(
                        f"cannot connect to {ep.url}", grpc.StatusCode.UNAVAILABLE
                    )
                    continue
                connect_failed = False
                try:
                    return await self._call(ep, full, request, response_cls, deadline)
                except errors.UnavailableError as e:
                    last = e
                    self.mark_down(ep)
                    if not idempotent:
                        raise
            if deadline is None or (endpoint is not None and not idempotent):
                # without a deadline, one pass over the endpoints is all we try
                raise last or errors.NoEndpointsError("no endpoint available")
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    async def _call(
        self, ep: Endpoint, full: str, request: Message, response_cls: type[M], deadline: float | None
    ) -> M:
        stub = ep.method(full, response_cls)
        md = await self.metadata(ep, deadline)
        try:
            return await stub(request, timeout=_remaining(deadline), metadata=md or None)  # type: ignore[no-any-return]
        except grpc.aio.AioRpcError as e:
            if self.user and e.details() == _INVALID_TOKEN:
                md = await self.metadata(ep, deadline, refresh=True)
                try:
                    return await stub(request, timeout=_remaining(deadline), metadata=md)  # type: ignore[no-any-return]
                except grpc.aio.AioRpcError as e2:
                    raise errors.from_rpc_error(e2) from None
            raise errors.from_rpc_error(e) from None

    async def pick_connected(self, deadline: float | None = None) -> Endpoint:
        """An endpoint whose channel is ready, for streams (watch, keepalive, snapshot)."""
        if self.closed:
            raise errors.ClientClosedError("client is closed")
        last_round = False
        while True:
            order = self.order()
            for i, ep in enumerate(order):
                if i < len(order) - 1 and self._failing(ep):
                    self.mark_down(ep)
                    continue
                if await self.connect(ep, deadline):
                    return ep
            if last_round or (deadline is not None and time.monotonic() >= deadline):
                raise errors.UnavailableError("no endpoint available", grpc.StatusCode.UNAVAILABLE)
            if deadline is None:
                last_round = True

    async def close(self) -> None:
        self.closed = True
        for ep in self.endpoints:
            await ep.close()


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.001, deadline - time.monotonic())
