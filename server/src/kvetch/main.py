"""``kvetch``: parse the configuration, open the member, serve clients until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Sequence
from urllib.parse import urlparse

from kvetch import config


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "unix", "unixs", ""):
        raise SystemExit(f"kvetch: unsupported URL scheme in {url!r} (TLS is not supported yet)")
    host = parsed.hostname or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    return host, parsed.port or 2379


async def serve(cfg: config.Config) -> int:
    from kvetch.obs import log as obslog
    from kvetch.rpc.serving import ClientServing
    from kvetch.server.core import KvetchServer

    try:
        obslog.setup_logging(cfg.log_level, cfg.log_outputs, enable_rotation=cfg.enable_log_rotation,
                             rotation_config_json=cfg.log_rotation_config_json)
    except ValueError as exc:
        raise SystemExit(f"kvetch: {exc}") from None
    obslog.install_stdlib_bridge()
    log = obslog.get_logger("kvetch")
    try:
        server = KvetchServer(cfg, log)
    except SystemExit:
        raise
    except Exception as exc:
        log.error("failed to start", error=repr(exc))
        raise
    await server.start([_host_port(u) for u in cfg.listen_peer_urls])
    serving = ClientServing(server, cfg, log)
    await serving.start([_host_port(u) for u in cfg.listen_client_urls],
                        [_host_port(u) for u in cfg.listen_client_http_urls],
                        [_host_port(u) for u in cfg.listen_metrics_urls])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Start-up objects live for the whole run: keep them out of the cycle collector's way, and
    # collect young objects less often (large ranges allocate thousands at once).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    log.info("ready to serve client requests")
    await stop.wait()
    log.info("received signal; shutting down")
    await serving.stop()
    await server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from kvetch.platform_check import check_supported_arch

    cfg = config.load(argv)
    check_supported_arch()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(cfg))
    return uvloop.run(serve(cfg))


if __name__ == "__main__":
    sys.exit(main())
