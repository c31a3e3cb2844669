"""Plain HTTP endpoints of the client port and of the metrics port, the etcd 3.5 way.

Owns the request routing shared with the JSON gateway (:class:`Router`: exact
paths, CORS headers on every answer, ``OPTIONS`` -> 200, ``/v3beta/`` rewritten
to ``/v3/``, Go-style 404/405 bodies) and these endpoints:

* ``GET /version`` -> ``{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}`` (whatever
  :meth:`ServerInfo.versions` returns, in its order; etcd 3.5.1 has exactly
  these two keys, 3.6 adds ``"storage"``).
* ``GET /health[?exclude=NOSPACE&serializable=true]`` -> 200
  ``{"health":"true","reason":""}``; 503 with the same shape (``"false"`` and a
  reason such as ``ALARM NOSPACE``, ``RAFT NO LEADER``, ``RANGE ERROR:...``)
  and a trailing newline (Go's ``http.Error``).
* ``GET /livez`` and ``GET /readyz`` (not in etcd 3.5.1, which answers 404;
  done as etcd 3.6 does): ``ok\\n``; ``?verbose`` lists ``[+]name ok`` lines;
  ``?exclude=name`` skips a check; 503 lists every check with ``[-]name
  failed: reason``; ``/livez/<check>`` runs one check.
* ``/metrics`` -> Prometheus text from :mod:`kvetch.obs.metrics`.
* ``GET /debug/vars`` -> Go expvar-style JSON (``cmdline``,
  ``file_descriptor_limit``, ``raft.status`` from the optional
  ``info.debug_vars()``).

The server implements :class:`ServerInfo`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiohttp import web

from kvetch.obs import metrics as obs_metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROUTER_KEY = web.AppKey("kvetch_router", object)
CORS_KEY = web.RequestKey("kvetch_cors", dict) if hasattr(web, "RequestKey") else "kvetch_cors"

LIVEZ_CHECKS = ("serializable_read",)
READYZ_CHECKS = ("data_corruption", "serializable_read", "linearizable_read", "non_learner")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerInfo(Protocol):
    """What the HTTP endpoints need from the server.

    ``versions()`` -> ``{"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}``;
    the cluster version is ``"not_decided"`` until known.

    ``health(serializable=..., exclude=...)`` -> ``(ok, reason)`` with etcd 3.5
    semantics: an active alarm not in ``exclude`` -> ``(False, "ALARM NOSPACE")``
    (``ALARM CORRUPT``, ``ALARM UNKNOWN``); no leader -> ``"RAFT NO LEADER"``;
    then a range (``keys_only``, ``limit=1``, serializable if asked) whose failure
    gives ``"RANGE ERROR:<message>"`` (auth errors count as healthy).

    ``run_check(name)`` (optional; without it the checks are derived from
    ``health``) -> ``None`` when the named /livez or /readyz check passes,
    else the reason (``"alarm activated: CORRUPT"``, ``"not supported for
    learner"``, an error message). Names: ``serializable_read``,
    ``linearizable_read``, ``data_corruption``, ``non_learner``.

    Optional: ``debug_vars()`` -> extra ``/debug/vars`` entries, etcd shows
    ``{"raft.status": {"id": "2e1259d415f2a040", "term": 2, "vote": "...",
    "commit": 37, "lead": "...", "raftState": "StateLeader", "applied": 37,
    "progress": {"<id>": {"match": 37, "next": 38, "state": "StateReplicate"}},
    "leadtransferee": "0"}}``.
    """

    def versions(self) -> dict[str, str]: ...

    async def health(self, *, serializable: bool, exclude: frozenset[str]) -> tuple[bool, str]: ...

    async def run_check(self, name: str) -> str | None: ...


_ALARMS = frozenset({"NOSPACE", "CORRUPT"})


async def run_check(info: ServerInfo, name: str) -> str | None:
    """``info.run_check`` if the server has it, else the check derived from ``info.health``."""
    own = getattr(info, "run_check", None)
    if own is not None:
        return await own(name)  # type: ignore[no-any-return]
    if name in ("serializable_read", "linearizable_read"):
        ok, reason = await info.health(serializable=name == "serializable_read", exclude=_ALARMS)
        return None if ok else reason
    if name == "data_corruption":
        ok, reason = await info.health(serializable=True, exclude=frozenset({"NOSPACE"}))
        return "alarm activated: CORRUPT" if not ok and "CORRUPT" in reason else None
    return None


# --- routing -----------------------------------------------------------------

def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """A body written the way Go's ``http.Error`` writes it (text/plain, nosniff, newline)."""
    h = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    if headers:
        h.update(headers)
    return web.Response(status=status, body=(text + "\n").encode(), headers=h)


class Router:
    """Exact-path routing with etcd's access-controller behaviour around it."""

    def __init__(self, *, cors: Iterable[str] = ("*",), host_whitelist: Iterable[str] = ("*",)) -> None:
        self.routes: dict[str, tuple[frozenset[str] | None, Handler]] = {}
        self.prefix_not_found: dict[str, str] = {}
        self.cors = frozenset(cors)
        self.host_whitelist = frozenset(host_whitelist)

    def add(self, path: str, handler: Handler, methods: Iterable[str] | None = None) -> None:
        self.routes[path] = (frozenset(methods) if methods is not None else None, handler)

    def not_found_under(self, prefix: str, text: str) -> None:
        """Unknown paths under ``prefix`` answer 404 with ``text`` (grpc-gateway says ``Not Found``)."""
        self.prefix_not_found[prefix] = text

    def _cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = "*" if "*" in self.cors else request.headers.get("Origin", "")
        if origin and (origin == "*" or origin in self.cors):
            return {
                "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Headers": "accept, content-type, authorization",
            }
        return {}

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        cors = self._cors_headers(request)
        if cors:
            request[CORS_KEY] = cors
        if "*" not in self.host_whitelist and request.scheme == "http":
            host = (request.host or "").rsplit(":", 1)[0].strip("[]")
            if host not in self.host_whitelist:
                return _with(cors, text_response(421, _dns_rebinding_text(host)))
        if request.method == "OPTIONS":
            return _with(cors, web.Response(status=200))
        path = request.path
        # Older API prefixes: etcd 3.3/3.4 served /v3beta, etcd <= 3.2 /v3alpha. Clients such as
        # etcd3gw pick the prefix from /version's "etcdserver"; kvetch reports its own version
        # (0.x), so they ask for /v3alpha. The request and reply formats are the same.
        for old in ("/v3beta/", "/v3alpha/"):
            if path.startswith(old):
                path = "/v3/" + path[len(old):]
                break
        route = self.routes.get(path)
        if route is None:
            for prefix, text in self.prefix_not_found.items():
                if path.startswith(prefix):
                    return _with(cors, text_response(404, text))
            return _with(cors, text_response(404, "404 page not found"))
        methods, handler = route
        if methods is not None and request.method not in methods:
            extra = {"Allow": ",".join(sorted(methods))} if "GET" in methods else None
            return _with(cors, text_response(405, "Method Not Allowed", extra))
        resp = await handler(request)
        if not resp.prepared:
            _with(cors, resp)
        return resp


def _with(headers: dict[str, str], resp: web.StreamResponse) -> web.StreamResponse:
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def _dns_rebinding_text(host: str) -> str:
    return (
        "\netcd received your request, but the Host header was unrecognized.\n\n"
        "To fix this, choose one of the following options:\n"
        "- Enable TLS, then any HTTPS request will be allowed.\n"
        "- Add the hostname you want to use to the whitelist in settings.\n"
        f"  - e.g. etcd --host-whitelist {json.dumps(host)}\n\n"
        "This requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n"
    )


async def _drop_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.popall("Server", None)


def new_app(router: Router, *, client_max_size: int = 64 * 1024 * 1024) -> web.Application:
    """An aiohttp app whose every request goes through ``router``."""
    app = web.Application(client_max_size=client_max_size)
    app.router.add_route("*", "/{tail:.*}", router.dispatch)
    app.on_response_prepare.append(_drop_server_header)
    app[ROUTER_KEY] = router
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """AppRunner as kvetch uses it: handlers are cancelled when the client goes away
    (long-lived watch streams must notice), no access log."""
    return web.AppRunner(app, handler_cancellation=True, access_log=None)


# --- endpoints ---------------------------------------------------------------

def add_version(router: Router, info: ServerInfo) -> None:
    async def version(request: web.Request) -> web.StreamResponse:
        body = json.dumps(info.versions(), separators=(",", ":")).encode()
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    router.add("/version", version, ("GET",))


def add_health(router: Router, info: ServerInfo) -> None:
    async def health(request: web.Request) -> web.StreamResponse:
        exclude = frozenset(v for v in request.query.getall("exclude", []) if v)
        serializable = request.query.get("serializable", "") == "true"
        ok, reason = await info.health(serializable=serializable, exclude=exclude)
        m = obs_metrics.METRICS
        (m.health_success if ok else m.health_failures).inc()
        body = json.dumps({"health": "true" if ok else "false", "reason": reason}, separators=(",", ":"))
        if not ok:
            return text_response(503, body)
        return web.Response(body=body.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})

    router.add("/health", health, ("GET",))


def add_probe(router: Router, info: ServerInfo, kind: str, checks: tuple[str, ...]) -> None:
    """``/livez`` or ``/readyz`` with etcd 3.6's output, plus one sub-path per check."""

    async def run(names: Iterable[str], request: web.Request) -> web.StreamResponse:
        lines = []
        failed = False
        for name in names:
            reason = await run_check(info, name)
            status = "success" if reason is None else "error"
            obs_metrics.METRICS.health_check.labels(kind, name, status).inc()
            if reason is None:
                lines.append(f"[+]{name} ok\n")
            else:
                failed = True
                lines.append(f"[-]{name} failed: {reason}\n")
        text = "".join(lines)
        if failed:
            return web.Response(
                status=503,
                body=(text + "\n").encode(),
                headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
            )
        out = (text if "verbose" in request.query else "") + "ok\n"
        return web.Response(
            body=out.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
        )

    async def root(request: web.Request) -> web.StreamResponse:
        excluded = set(request.query.getall("exclude", []))
        return await run([c for c in checks if c not in excluded], request)

    router.add(f"/{kind}", root, ("GET",))
    for check in checks:

        async def one(request: web.Request, _check: str = check) -> web.StreamResponse:
            return await run([_check], request)

        router.add(f"/{kind}/{check}", one, ("GET",))


def add_debug_vars(router: Router, info: ServerInfo) -> None:
    """``GET /debug/vars``: Go's expvar page as etcd serves it (``cmdline``,
    ``file_descriptor_limit``, plus whatever the optional ``info.debug_vars()``
    returns, e.g. ``{"raft.status": {...}}``). Go's ``memstats`` has no Python
    equivalent and is left out."""
    import resource
    import sys

    async def debug_vars(request: web.Request) -> web.StreamResponse:
        values: dict[str, object] = {
            "cmdline": list(sys.argv),
            "file_descriptor_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }
        extra = getattr(info, "debug_vars", None)
        if extra is not None:
            values.update(extra())
        body = "{\n" + ",\n".join(
            f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in sorted(values.items())
        ) + "\n}\n"
        return web.Response(body=body.encode(), headers={"Content-Type": "application/json; charset=utf-8"})

    router.add("/debug/vars", debug_vars)


def add_metrics(router: Router, registry: object | None = None) -> None:
    reg = registry if registry is not None else obs_metrics.METRICS.registry

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(body=obs_metrics.render(reg), headers={"Content-Type": METRICS_CONTENT_TYPE})  # type: ignore[arg-type]

    router.add("/metrics", metrics)


def add_http_endpoints(router: Router, info: ServerInfo, *, metrics: bool = True) -> None:
    """Everything the client port serves besides the /v3 gateway."""
    add_version(router, info)
    add_health(router, info)
    add_probe(router, info, "livez", LIVEZ_CHECKS)
    add_probe(router, info, "readyz", READYZ_CHECKS)
    add_debug_vars(router, info)
    if metrics:
        add_metrics(router)


def build_http_app(info: ServerInfo, *, cors: Iterable[str] = ("*",)) -> web.Application:
    """/version, /health, /livez, /readyz, /metrics without the gateway."""
    router = Router(cors=cors)
    add_http_endpoints(router, info)
    return new_app(router)


def build_metrics_app(info: ServerInfo) -> web.Application:
    """The ``--listen-metrics-urls`` listener: /metrics and /health (and the 3.6 probes)."""
    router = Router()
    add_metrics(router)
    add_health(router, info)
    add_probe(router, info, "livez", LIVEZ_CHECKS)
    add_probe(router, info, "readyz", READYZ_CHECKS)
    return new_app(router)
