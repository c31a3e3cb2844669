"""Wire a member to its client listeners: gRPC, JSON gateway and HTTP endpoints, metrics listeners.

By default each ``--listen-client-urls`` port serves gRPC and HTTP/1.x together
(the sniffing front relays HTTP/2 to an internal grpc.aio server on a unix
socket). With ``--listen-client-http-urls`` HTTP moves to its own listeners
and gRPC binds the client ports directly, with no relay in front.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import grpc

from kvetch.config import Config
from kvetch.obs.metrics import METRICS
from kvetch.rpc import front
from kvetch.rpc.api import Method
from kvetch.rpc.gateway import build_gateway_app
from kvetch.rpc.grpc_server import build_grpc_server
from kvetch.rpc.services import build_api
from kvetch.server.core import KvetchServer
from kvetch.version import __version__


class ClientServing:
    def __init__(self, server: KvetchServer, cfg: Config, log: Any) -> None:
        self.server = server
        self.cfg = cfg
        self.log = log
        self.api = build_api(server)
        self._closers: list[Any] = []
        self._grpc: grpc.aio.Server | None = None
        self._sock_dir = tempfile.mkdtemp(prefix="kvetch-grpc-")
        self._wire_metrics()

    def _wire_metrics(self) -> None:
        m = METRICS
        s = self.server
        m.set_server_version(__version__)
        if s.cluster_version:
            m.set_cluster_version(s.cluster_version)
        m.set_server_id(s.member_id)
        m.has_leader.set(1)
        m.is_leader.set(1)
        m.quota_backend_bytes.set(s.quota)
        m.db_total_size.set_function(s.backend.size)
        m.db_total_size_in_use.set_function(s.backend.size_in_use)
        m.init_grpc_methods(
            ("unary" if x.kind == "unary" else x.kind, x.service, x.name) for x in self.api.methods.values())

        def hook(event: str, **values: Any) -> None:
            if event == "wal_fsync":
                m.wal_fsync.observe(values["seconds"])
            elif event == "apply":
                m.proposals_committed.inc(values["entries"])
                m.proposals_applied.inc(values["entries"])
                m.backend_commit.observe(values["seconds"])
            elif event == "cluster_version":
                m.set_cluster_version(values["version"])
            elif event == "defrag":
                m.backend_defrag.observe(values["seconds"])
        s.metrics_hook = hook

    def _observe(self, method: Method, code: grpc.StatusCode) -> None:
        kind = "unary" if method.kind == "unary" else ("server_stream" if method.kind == "server_stream"
                                                       else "bidi_stream")
        METRICS.record_grpc(kind, method.service, method.name, code.name)

    async def start(self, client: list[tuple[str, int]], http: list[tuple[str, int]],
                    metrics: list[tuple[str, int]]) -> None:
        info = self.server
        interceptors, spans = self._tracing()
        self._grpc = build_grpc_server(self.api, max_request_bytes=self.cfg.max_request_bytes,
                                       observe=self._observe, interceptors=interceptors)
        app = build_gateway_app(self.api, info, max_request_bytes=self.cfg.max_request_bytes,
                                observe=self._observe, spans=spans)
        if http:
            for host, port in client:
                self._grpc.add_insecure_port(f"{host}:{port}")
            await self._grpc.start()
            for host, port in http:
                srv = await front.serve_http(host, port, app)
                self._closers.append(srv.close)
                self.log.info("serving client traffic insecurely", address=f"{host}:{port}", kind="http")
        else:
            target = f"unix:{os.path.join(self._sock_dir, 'grpc.sock')}"
            self._grpc.add_insecure_port(target)
            await self._grpc.start()
            for host, port in client:
                srv = await front.serve_client_port(host, port, target, app)
                self._closers.append(srv.close)
                self.log.info("serving client traffic insecurely; this is strongly discouraged!",
                              address=f"{host}:{port}")
        for host, port in metrics:
            msrv = await front.serve_metrics(host, port, info)
            self._closers.append(msrv.close)
            self.log.info("serving metrics", address=f"http://{host}:{port}/metrics")

    def _tracing(self) -> tuple[list[Any], Any]:
        """OpenTelemetry (--experimental-enable-distributed-tracing): a span per RPC, both transports."""
        cfg = self.cfg
        if not cfg.experimental_enable_distributed_tracing:
            return [], None
        from kvetch.obs import tracing

        if not tracing.otel_available():
            self.log.warn("distributed tracing requested but opentelemetry-sdk is not installed; "
                          "install kvetch[otel]")
            return [], None
        provider = tracing.setup_otel(tracing.OtelConfig(
            address=cfg.experimental_distributed_tracing_address,
            service_name=cfg.experimental_distributed_tracing_service_name,
            instance_id=cfg.experimental_distributed_tracing_instance_id,
            sampling_rate_per_million=cfg.experimental_distributed_tracing_sampling_rate or None,
        ))
        self.log.info("distributed tracing enabled",
                      address=cfg.experimental_distributed_tracing_address)
        return [tracing.make_server_interceptor(provider)], tracing.RpcSpans(provider)

    async def stop(self, grace: float = 2.0) -> None:
        started = time.monotonic()
        for close in reversed(self._closers):
            try:
                await close()
            except Exception as exc:  # keep stopping the rest
                self.log.warn("failed to close listener", error=repr(exc))
        if self._grpc is not None:
            await self._grpc.stop(max(0.1, grace - (time.monotonic() - started)))
        try:
            sock = os.path.join(self._sock_dir, "grpc.sock")
            if os.path.exists(sock):
                os.unlink(sock)
            os.rmdir(self._sock_dir)
        except OSError:
            pass

