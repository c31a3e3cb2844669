"""etcd's ``/v3/*`` JSON gateway over the transport-neutral API table.

Same paths, JSON and errors as etcd 3.5's grpc-gateway (v1, ``JSONPb{OrigName:
true}``), checked against real etcd 3.5.1:

* ``POST /v3/kv/range`` etc., body = one JSON request (see :mod:`.jsonpb`); an
  empty body is an empty request; anything after the first JSON value is
  ignored. Answer 200 ``application/json`` with header
  ``Grpc-Metadata-Content-Type: application/grpc``.
* Errors: ``{"error": msg, "code": grpc_code, "message": msg}`` with the HTTP
  status grpc-gateway maps the code to (InvalidArgument, FailedPrecondition and
  OutOfRange -> 400, NotFound 404, ResourceExhausted 429, Unavailable 503, ...).
  Bad JSON -> 400 code 3 with Go's decoder message.
* Streams (``/v3/watch``, ``/v3/lease/keepalive``, ``/v3/maintenance/snapshot``,
  ``/v3/election/observe``): the request body is a sequence of JSON requests;
  each response is written as ``{"result":{...}}\\n`` (chunked). A first request
  that does not decode -> 500 ``code 2``; a later one ends the request side.
  The end of the body half-closes the request stream (the response stream
  stays open, as in etcd). An error from the handler ends the stream with
  ``{"error":{"grpc_code":..,"http_code":..,"message":..,"http_status":..}}``.
* The HTTP ``Authorization`` header reaches handlers as call metadata
  ``authorization`` (:mod:`.callctx`), like grpc-gateway's header forwarding;
  ``Grpc-Metadata-<Key>`` headers arrive as ``<key>``.
* ``/v3/maintenance/hash`` is Hash (as in 3.5; HashKV declared the same path
  there and is unreachable); ``/v3/maintenance/hashkv`` is HashKV as in 3.6.
* Also websockets (etcd wraps the gateway in grpc-websocket-proxy): a
  ``GET`` with ``Upgrade: websocket`` on a stream path exchanges one JSON
  message per websocket text frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

import grpc
from aiohttp import WSMsgType, web
from google.protobuf.message import Message

from kvetch.rpc import jsonpb
from kvetch.rpc.api import API, Method
from kvetch.rpc.callctx import CallContext, current_call
from kvetch.rpc.http import CORS_KEY, Router, ServerInfo, add_http_endpoints, new_app
from kvetch.server.errors import RPCError

log = logging.getLogger("kvetch.rpc.gateway")

#: gRPC full method name -> the gateway paths etcd serves it under.
ROUTES: dict[str, tuple[str, ...]] = {
    "/etcdserverpb.KV/Range": ("/v3/kv/range",),
    "/etcdserverpb.KV/Put": ("/v3/kv/put",),
    "/etcdserverpb.KV/DeleteRange": ("/v3/kv/deleterange",),
    "/etcdserverpb.KV/Txn": ("/v3/kv/txn",),
    "/etcdserverpb.KV/Compact": ("/v3/kv/compaction",),
    "/etcdserverpb.Watch/Watch": ("/v3/watch",),
    "/etcdserverpb.Lease/LeaseGrant": ("/v3/lease/grant",),
    "/etcdserverpb.Lease/LeaseRevoke": ("/v3/lease/revoke", "/v3/kv/lease/revoke"),
    "/etcdserverpb.Lease/LeaseKeepAlive": ("/v3/lease/keepalive",),
    "/etcdserverpb.Lease/LeaseTimeToLive": ("/v3/lease/timetolive", "/v3/kv/lease/timetolive"),
    "/etcdserverpb.Lease/LeaseLeases": ("/v3/lease/leases", "/v3/kv/lease/leases"),
    "/etcdserverpb.Cluster/MemberAdd": ("/v3/cluster/member/add",),
    "/etcdserverpb.Cluster/MemberRemove": ("/v3/cluster/member/remove",),
    "/etcdserverpb.Cluster/MemberUpdate": ("/v3/cluster/member/update",),
    "/etcdserverpb.Cluster/MemberList": ("/v3/cluster/member/list",),
    "/etcdserverpb.Cluster/MemberPromote": ("/v3/cluster/member/promote",),
    "/etcdserverpb.Maintenance/Alarm": ("/v3/maintenance/alarm",),
    "/etcdserverpb.Maintenance/Status": ("/v3/maintenance/status",),
    "/etcdserverpb.Maintenance/Defragment": ("/v3/maintenance/defragment",),
    "/etcdserverpb.Maintenance/Hash": ("/v3/maintenance/hash",),
    "/etcdserverpb.Maintenance/HashKV": ("/v3/maintenance/hashkv",),
    "/etcdserverpb.Maintenance/Snapshot": ("/v3/maintenance/snapshot",),
    "/etcdserverpb.Maintenance/MoveLeader": ("/v3/maintenance/transfer-leadership",),
    "/etcdserverpb.Maintenance/Downgrade": ("/v3/maintenance/downgrade",),
    "/etcdserverpb.Auth/AuthEnable": ("/v3/auth/enable",),
    "/etcdserverpb.Auth/AuthDisable": ("/v3/auth/disable",),
    "/etcdserverpb.Auth/AuthStatus": ("/v3/auth/status",),
    "/etcdserverpb.Auth/Authenticate": ("/v3/auth/authenticate",),
    "/etcdserverpb.Auth/UserAdd": ("/v3/auth/user/add",),
    "/etcdserverpb.Auth/UserGet": ("/v3/auth/user/get",),
    "/etcdserverpb.Auth/UserList": ("/v3/auth/user/list",),
    "/etcdserverpb.Auth/UserDelete": ("/v3/auth/user/delete",),
    "/etcdserverpb.Auth/UserChangePassword": ("/v3/auth/user/changepw",),
    "/etcdserverpb.Auth/UserGrantRole": ("/v3/auth/user/grant",),
    "/etcdserverpb.Auth/UserRevokeRole": ("/v3/auth/user/revoke",),
    "/etcdserverpb.Auth/RoleAdd": ("/v3/auth/role/add",),
    "/etcdserverpb.Auth/RoleGet": ("/v3/auth/role/get",),
    "/etcdserverpb.Auth/RoleList": ("/v3/auth/role/list",),
    "/etcdserverpb.Auth/RoleDelete": ("/v3/auth/role/delete",),
    "/etcdserverpb.Auth/RoleGrantPermission": ("/v3/auth/role/grant",),
    "/etcdserverpb.Auth/RoleRevokePermission": ("/v3/auth/role/revoke",),
    "/v3lockpb.Lock/Lock": ("/v3/lock/lock",),
    "/v3lockpb.Lock/Unlock": ("/v3/lock/unlock",),
    "/v3electionpb.Election/Campaign": ("/v3/election/campaign",),
    "/v3electionpb.Election/Proclaim": ("/v3/election/proclaim",),
    "/v3electionpb.Election/Leader": ("/v3/election/leader",),
    "/v3electionpb.Election/Observe": ("/v3/election/observe",),
    "/v3electionpb.Election/Resign": ("/v3/election/resign",),
}

#: grpc-gateway v1's HTTPStatusFromCode.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 408,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

#: etcd's gRPC server accepts max-request-bytes plus this much framing overhead.
GRPC_OVERHEAD_BYTES = 512 * 1024
DEFAULT_MAX_REQUEST_BYTES = int(1.5 * 1024 * 1024)

_OK_HEADERS = {"Content-Type": "application/json", "Grpc-Metadata-Content-Type": "application/grpc"}
_ERR_HEADERS = {"Content-Type": "application/json"}


Observe = Callable[[Method, grpc.StatusCode], None]
_SPAN: ContextVar[tuple[Any, Any] | None] = ContextVar("kvetch_gateway_span", default=None)


def _no_observe(method: Method, code: grpc.StatusCode) -> None:
    return None


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


def error_body(code: grpc.StatusCode, message: str) -> str:
    return jsonpb.dumps({"error": message, "code": code.value[0], "message": message})


def error_response(code: grpc.StatusCode, message: str) -> web.Response:
    return web.Response(status=http_status(code), body=error_body(code, message).encode(), headers=_ERR_HEADERS)


def stream_error_chunk(code: grpc.StatusCode, message: str) -> str:
    status = http_status(code)
    return jsonpb.dumps(
        {
            "error": {
                "grpc_code": code.value[0],
                "http_code": status,
                "message": message,
                "http_status": HTTPStatus(status).phrase,
            }
        }
    )


def _unexpected(exc: BaseException) -> RPCError:
    """How grpc.aio reports a handler's stray exception (code UNKNOWN)."""
    return RPCError(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc)}: {exc}")


def _call_context(request: web.Request) -> CallContext:
    md: dict[str, str] = {}
    for k, v in request.headers.items():
        lk = k.lower()
        if lk == "authorization":
            md["authorization"] = v
        elif lk.startswith("grpc-metadata-"):
            md[lk[len("grpc-metadata-"):]] = v
    peer = request.remote or ""
    return CallContext("http", md, peer)


class Gateway:
    """The /v3 handlers for one API table."""

    def __init__(self, api: API, *, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 observe: Observe | None = None, spans: Any = None) -> None:
        self.api = api
        self.spans = spans  # kvetch.obs.tracing.RpcSpans or None
        observe = observe or _no_observe
        if spans is None:
            self.observe: Observe = observe
        else:
            def traced(method: Method, code: grpc.StatusCode) -> None:
                observe(method, code)
                state = _SPAN.get()
                if state is not None:
                    _SPAN.set(None)
                    spans.finish(state[0], state[1], code.name, code.value[0])

            self.observe = traced
        self.max_recv = max_request_bytes + GRPC_OVERHEAD_BYTES

    def _start_span(self, request: web.Request, method: Method) -> None:
        if self.spans is None:
            return
        carrier = {k.lower(): v for k, v in request.headers.items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ip, port = (peer[0], peer[1]) if isinstance(peer, tuple) and len(peer) >= 2 else ("", None)
        _SPAN.set(self.spans.start(method.full_name, carrier, ip, port))

    def install(self, router: Router) -> None:
        for full_name, paths in ROUTES.items():
            method = self.api.get(full_name)
            if method is None:
                continue
            for path in paths:
                router.add(path, self._handler_for(method), ("POST",) if method.kind == "unary" else ("POST", "GET"))
        router.not_found_under("/v3/", "Not Found")

    def _handler_for(self, method: Method):  # type: ignore[no-untyped-def]
        if method.kind == "unary":

            async def unary(request: web.Request) -> web.StreamResponse:
                return await self._unary(request, method)

            return unary

        async def stream(request: web.Request) -> web.StreamResponse:
            if request.method == "GET":
                if request.headers.get("Upgrade", "").lower() == "websocket":
                    return await self._websocket(request, method)
                return _method_not_allowed()
            return await self._stream(request, method)

        return stream

    # --- unary -------------------------------------------------------------
    def _check_size(self, req: Message) -> None:
        size = req.ByteSize()
        if size > self.max_recv:
            raise RPCError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"grpc: received message larger than max ({size} vs. {self.max_recv})",
            )

    async def _unary(self, request: web.Request, method: Method) -> web.StreamResponse:
        body = await request.read()
        try:
            req = jsonpb.parse_body(body, method.request_type)
        except jsonpb.DecodeError as e:
            return error_response(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        token = current_call.set(_call_context(request))
        self._start_span(request, method)
        try:
            self._check_size(req)
            resp = await method.handler(req)
        except RPCError as e:
            self.observe(method, e.code)
            return error_response(e.code, e.message)
        except asyncio.CancelledError:
            self.observe(method, grpc.StatusCode.CANCELLED)
            raise
        except Exception as e:  # a handler bug: answer as grpc.aio would
            log.exception("gateway handler %s failed", method.full_name)
            err = _unexpected(e)
            self.observe(method, err.code)
            return error_response(err.code, err.message)
        finally:
            current_call.reset(token)
        self.observe(method, grpc.StatusCode.OK)
        return web.Response(body=jsonpb.to_json(_as_message(resp, method)).encode(), headers=_OK_HEADERS)

    # --- streams -----------------------------------------------------------
    async def _stream(self, request: web.Request, method: Method) -> web.StreamResponse:
        token = current_call.set(_call_context(request))
        try:
            if method.kind == "server_stream":
                body = await request.read()
                try:
                    req = jsonpb.parse_body(body, method.request_type)
                except jsonpb.DecodeError as e:
                    return error_response(grpc.StatusCode.INVALID_ARGUMENT, str(e))
                responses = method.handler(req)
            else:
                reader = _BodyRequests(request, method.request_type, self)
                try:
                    await reader.first()
                except (jsonpb.DecodeError, RPCError) as e:
                    return error_response(grpc.StatusCode.UNKNOWN, getattr(e, "message", str(e)))
                responses = method.handler(reader.iterate())
            self._start_span(request, method)
            return await self._write_stream(request, responses, method)
        finally:
            current_call.reset(token)

    async def _write_stream(
        self, request: web.Request, responses: AsyncIterator[Message], method: Method
    ) -> web.StreamResponse:
        resp: web.StreamResponse | None = None
        cors = request.get(CORS_KEY, {})
        code = grpc.StatusCode.OK
        try:
            async for msg in responses:
                if resp is None:
                    resp = web.StreamResponse(status=200, headers={**cors, **_OK_HEADERS})
                    await resp.prepare(request)
                await resp.write((jsonpb.dumps({"result": jsonpb.to_obj(_as_message(msg, method))}) + "\n").encode())
        except RPCError as e:
            code = e.code
            resp = await self._stream_error(request, resp, e, cors)
        except (asyncio.CancelledError, ConnectionResetError):
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as e:
            log.exception("gateway stream handler failed")
            err = _unexpected(e)
            code = err.code
            resp = await self._stream_error(request, resp, err, cors)
        finally:
            self.observe(method, code)
            aclose = getattr(responses, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        if resp is None:
            resp = web.StreamResponse(status=200, headers={**cors, **_OK_HEADERS})
            await resp.prepare(request)
        await resp.write_eof()
        return resp

    async def _stream_error(
        self, request: web.Request, resp: web.StreamResponse | None, err: RPCError, cors: dict[str, str]
    ) -> web.StreamResponse:
        if resp is None:
            resp = web.StreamResponse(status=http_status(err.code), headers={**cors, **_ERR_HEADERS})
            await resp.prepare(request)
        await resp.write(stream_error_chunk(err.code, err.message).encode())
        return resp

    # --- websocket (grpc-websocket-proxy) -------------------------------------
    async def _websocket(self, request: web.Request, method: Method) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        queue: asyncio.Queue[Message | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for m in ws:
                    if m.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                        break
                    data = m.data if isinstance(m.data, str) else m.data.decode("utf-8", "replace")
                    try:
                        got = jsonpb.first_value(data)
                        if got is None:
                            continue
                        queue.put_nowait(jsonpb.parse_into(got[0], method.request_type()))
                    except (jsonpb.DecodeError, jsonpb.IncompleteJSON):
                        break
            finally:
                queue.put_nowait(None)

        async def requests() -> AsyncIterator[Message]:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item

        pump_task = asyncio.create_task(pump())
        token = current_call.set(_call_context(request))
        try:
            if method.kind == "server_stream":
                first = await queue.get()
                responses = method.handler(first if first is not None else method.request_type())
            else:
                responses = method.handler(requests())
            try:
                async for msg in responses:
                    await ws.send_str(jsonpb.dumps({"result": jsonpb.to_obj(_as_message(msg, method))}))
            except RPCError as e:
                await ws.send_str(stream_error_chunk(e.code, e.message))
        finally:
            current_call.reset(token)
            pump_task.cancel()
            with contextlib.suppress(BaseException):
                await pump_task
            await ws.close()
        return ws


def _as_message(resp: Any, method: Method) -> Message:
    """Handlers may return pre-encoded responses (bytes) on hot paths; decode those."""
    if isinstance(resp, bytes | bytearray | memoryview):
        return method.response_type.FromString(bytes(resp))
    return resp  # type: ignore[no-any-return]


def _method_not_allowed() -> web.Response:
    from kvetch.rpc.http import text_response

    return text_response(405, "Method Not Allowed")


class _BodyRequests:
    """Turns a streamed request body of concatenated JSON values into request messages."""

    def __init__(self, request: web.Request, request_type: type[Message], gw: Gateway) -> None:
        self.content = request.content
        self.request_type = request_type
        self.gw = gw
        self.decoder = jsonpb.StreamDecoder()
        self.pending: deque[Any] = deque()
        self.eof = False
        self.first_msg: Message | None = None

    async def _fill(self) -> None:
        """Read until at least one value is pending or the body ends."""
        while not self.pending and not self.eof:
            chunk = await self.content.readany()
            if not chunk:
                self.eof = True
            self.pending.extend(self.decoder.feed(chunk, final=self.eof))

    def _make(self, value: Any) -> Message:
        msg = jsonpb.parse_into(value, self.request_type())
        self.gw._check_size(msg)
        return msg

    async def first(self) -> None:
        """Decode the first request now, so that a bad one fails the call (as in etcd)."""
        await self._fill()
        if self.pending:
            self.first_msg = self._make(self.pending.popleft())

    async def iterate(self) -> AsyncIterator[Message]:
        if self.first_msg is not None:
            first, self.first_msg = self.first_msg, None
            yield first
        while True:
            try:
                await self._fill()
                if not self.pending:
                    return
                msg = self._make(self.pending.popleft())
            except (jsonpb.DecodeError, RPCError) as e:
                log.debug("gateway: closing request stream: %s", e)
                return
            except (ConnectionResetError, asyncio.CancelledError):
                return
            except Exception as e:  # aiohttp payload errors when the client goes away
                log.debug("gateway: request body ended: %r", e)
                return
            yield msg


def build_gateway_app(
    api: API,
    info: ServerInfo,
    *,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    cors: Iterable[str] = ("*",),
    host_whitelist: Iterable[str] = ("*",),
    metrics: bool = True,
    observe: Observe | None = None,
    spans: Any = None,
) -> web.Application:
    """The client-port HTTP app: /v3 gateway + /version, /health, /livez, /readyz, /metrics.

    Serve it with :func:`kvetch.rpc.front.serve_client_port` (shared with gRPC) or
    :func:`kvetch.rpc.front.serve_http` (``--listen-client-http-urls``). If you run it
    yourself, use :func:`kvetch.rpc.http.make_runner` (handler cancellation on, so
    long watches notice the client leaving). ``observe(method, grpc_code)`` is called
    once per finished call (the same hook as ``build_grpc_server``), so gateway calls
    count in ``grpc_server_handled_total`` as they do in etcd (where the gateway is a
    gRPC client of the server). ``spans`` (a :class:`kvetch.obs.tracing.RpcSpans`)
    makes one OpenTelemetry span per gateway call, named like the gRPC ones and
    continuing a W3C ``traceparent`` header.
    """
    router = Router(cors=cors, host_whitelist=host_whitelist)
    Gateway(api, max_request_bytes=max_request_bytes, observe=observe, spans=spans).install(router)
    add_http_endpoints(router, info, metrics=metrics)
    # JSON doubles the size of bytes (base64); leave room for that, the real limit is checked on the proto
    return new_app(router, client_max_size=4 * (max_request_bytes + GRPC_OVERHEAD_BYTES))
