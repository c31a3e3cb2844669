"""One client port for gRPC and HTTP/1.x, as etcd serves them (cmux).

Each accepted connection is sniffed: if it opens with the HTTP/2 client
preface (``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n``) it is gRPC and its bytes are
relayed both ways to the internal ``grpc.aio`` server (a loopback TCP port or
a unix socket, ``grpc_target`` = ``"127.0.0.1:PORT"`` or ``"unix:/path"``);
anything else is handed, in-process, to the aiohttp application's protocol
(the JSON gateway, /version, /health, /metrics).

The relay is two plain asyncio protocols writing straight into each other's
transport from ``data_received``; when one transport's write buffer fills,
the other side stops reading (``pause_reading``) until it drains. No task and
no await per chunk.

Also here: :func:`serve_http` (``--listen-client-http-urls``: HTTP only on its
own listener; gRPC then listens directly on the client URLs) and
:func:`serve_metrics` (``--listen-metrics-urls``: /metrics and /health).

Wiring (server side)::

    grpc_server = grpc.aio.server(...); grpc_server.add_insecure_port("unix:/tmp/kvetch-<id>.sock")
    await grpc_server.start()
    app = build_gateway_app(api, info)
    front = await serve_client_port("127.0.0.1", 2379, "unix:/tmp/kvetch-<id>.sock", app)
    ...
    await front.close(); await grpc_server.stop(grace)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as _ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from kvetch.rpc.http import ServerInfo, build_metrics_app, make_runner

log = logging.getLogger("kvetch.rpc.front")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# --- relay -------------------------------------------------------------------

class _Half(asyncio.Protocol):
    """One side of a relay: what it receives goes to ``peer``'s transport."""

    __slots__ = ("closed", "early", "early_eof", "peer", "registry", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.closed = False
        self.registry: set[asyncio.BaseTransport] | None = None
        # bytes (or EOF) that arrive before the relay is linked; some event loops
        # (uvloop) deliver the upstream's first bytes before the connect coroutine resumes
        self.early: list[bytes] = []
        self.early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def link(self, peer: _Half) -> None:
        """Start relaying to ``peer``; flush what arrived before."""
        self.peer = peer
        if self.early and peer.transport is not None:
            peer.transport.write(b"".join(self.early))
        self.early = []
        if self.early_eof:
            self.eof_received()

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool | None:
        peer = self.peer
        if peer is None:
            self.early_eof = True
            return True
        if peer is not None and peer.transport is not None and not peer.closed:
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
                return True  # keep our write side open: the other direction may still flow
            peer.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.registry is not None and self.transport is not None:
            self.registry.discard(self.transport)
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            peer.transport.close()

    # our transport's write buffer is full: stop reading from the peer
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.resume_reading()


async def _open_upstream(target: str) -> tuple[asyncio.Transport, _Half]:
    loop = asyncio.get_running_loop()
    if target.startswith("unix:"):
        path = target[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        tr, proto = await loop.create_unix_connection(_Half, path)
    else:
        host, _, port = target.rpartition(":")
        tr, proto = await loop.create_connection(_Half, host.strip("[]") or "127.0.0.1", int(port))
    return tr, proto  # type: ignore[return-value]


# --- sniffing ------------------------------------------------------------------

class _Sniffer(asyncio.Protocol):
    """First protocol of every accepted connection: decides gRPC or HTTP."""

    def __init__(self, front: ClientPortServer) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.decided = False
        self.lost = False
        self.eof = False  # the client half-closed while the upstream was connecting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.front._conns.add(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.decided:  # bytes arriving while the upstream connects
            self.buf += data
            return
        self.buf += data
        n = min(len(self.buf), len(H2_PREFACE))
        if self.buf[:n] != H2_PREFACE[:n]:
            self._to_http()
        elif len(self.buf) >= len(H2_PREFACE):
            self._to_grpc()

    def eof_received(self) -> bool | None:
        if not self.decided:
            if self.buf:
                self._to_http()
                return None
            return None
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.transport is not None:
            self.front._conns.discard(self.transport)

    def _to_http(self) -> None:
        self.decided = True
        tr = self.transport
        assert tr is not None
        self.front._conns.discard(tr)
        proto = self.front._http_factory()
        tr.set_protocol(proto)
        proto.connection_made(tr)
        data, self.buf = self.buf, b""
        if data:
            proto.data_received(data)

    def _to_grpc(self) -> None:
        self.decided = True
        tr = self.transport
        assert tr is not None
        tr.pause_reading()
        task = asyncio.get_running_loop().create_task(self._connect())
        self.front._tasks.add(task)
        task.add_done_callback(self.front._tasks.discard)

    async def _connect(self) -> None:
        tr = self.transport
        assert tr is not None
        try:
            up_tr, up = await _open_upstream(self.front.grpc_target)
        except OSError as e:
            log.warning("front: cannot reach the gRPC server at %s: %s", self.front.grpc_target, e)
            tr.close()
            return
        if self.lost or tr.is_closing():
            up_tr.close()
            return
        down = _Half()
        down.transport = tr
        conns = self.front._conns
        down.registry = up.registry = conns
        conns.add(up_tr)
        conns.add(tr)
        tr.set_protocol(down)
        data, self.buf = self.buf, b""
        up_tr.write(data)
        down.link(up)
        up.link(down)  # flushes any bytes the gRPC server already sent
        if up.closed:  # the upstream went away before we linked
            tr.close()
            return
        if self.eof:
            down.eof_received()
            return
        tr.resume_reading()


@dataclass
class ClientPortServer:
    """A listening client port (gRPC + HTTP). ``port`` is the bound port."""

    grpc_target: str
    runner: web.AppRunner
    server: asyncio.AbstractServer | None = None
    _conns: set[asyncio.BaseTransport] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def _http_factory(self) -> Callable[[], asyncio.Protocol]:
        srv = self.runner.server
        assert srv is not None
        return srv  # type: ignore[return-value]

    @property
    def sockets(self) -> list[socket.socket]:
        return list(getattr(self.server, "sockets", None) or ())

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    async def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close relayed gRPC connections, shut the HTTP side down."""
        if self.server is not None:
            self.server.close()
        for t in list(self._tasks):
            t.cancel()
        for tr in list(self._conns):
            tr.close()
        self._conns.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.runner.shutdown(), timeout)
        await self.runner.cleanup()
        if self.server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), timeout)


async def serve_client_port(
    host: str,
    port: int,
    grpc_target: str,
    app: web.Application,
    *,
    unix_path: str | None = None,
    backlog: int = 1024,
    reuse_port: bool = False,
    ssl: _ssl.SSLContext | None = None,
) -> ClientPortServer:
    """Listen on ``host:port`` (or ``unix_path``) for both gRPC and HTTP/1.x.

    ``port=0`` picks a free port (read ``.port``). With ``ssl`` (an https client
    URL) the sniffing happens on the decrypted bytes and the context is given ALPN
    ``h2`` and ``http/1.1`` (gRPC clients require ``h2``); the internal hop to the
    gRPC server stays plaintext on the private socket, like etcd's gateway dial.
    """
    if ssl is not None:
        ssl.set_alpn_protocols(["h2", "http/1.1"])
    runner = make_runner(app)
    await runner.setup()
    front = ClientPortServer(grpc_target=grpc_target, runner=runner)
    loop = asyncio.get_running_loop()
    if unix_path is not None:
        front.server = await loop.create_unix_server(lambda: _Sniffer(front), unix_path, backlog=backlog, ssl=ssl)
    else:
        front.server = await loop.create_server(
            lambda: _Sniffer(front), host, port, backlog=backlog, reuse_address=True, reuse_port=reuse_port, ssl=ssl
        )
    return front


# --- separate listeners -----------------------------------------------------------

@dataclass
class HTTPServer:
    """An HTTP-only listener (aiohttp). ``port`` is the bound port."""

    runner: web.AppRunner
    site: web.BaseSite

    @property
    def port(self) -> int:
        server = getattr(self.site, "_server", None)
        return int(server.sockets[0].getsockname()[1]) if server else 0

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve_http(host: str, port: int, app: web.Application, *, unix_path: str | None = None,
                     ssl: _ssl.SSLContext | None = None) -> HTTPServer:
    """HTTP on its own listener (``--listen-client-http-urls``): give it the gateway app."""
    runner = make_runner(app)
    await runner.setup()
    site: web.BaseSite
    if unix_path is not None:
        site = web.UnixSite(runner, unix_path, ssl_context=ssl)
    else:
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl)
    await site.start()
    return HTTPServer(runner, site)


async def serve_metrics(host: str, port: int, info: ServerInfo, *, ssl: _ssl.SSLContext | None = None) -> HTTPServer:
    """``--listen-metrics-urls``: /metrics and /health (plus /livez, /readyz)."""
    return await serve_http(host, port, build_metrics_app(info), ssl=ssl)
