"""--listen-client-http-urls (HTTP on its own listener, gRPC alone on the client port) and
--listen-metrics-urls (/metrics and /health apart), and the server's log is zap-style JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from e2e_support.etcdctl import run_etcdctl
from e2e_support.ports import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.requires_flavour("kvetch")
def test_separate_http_and_metrics_listeners(server_factory, flavour: str) -> None:
    http_port, metrics_port = free_port(), free_port()
    srv = server_factory(flavour, extra_args=(
        "--listen-client-http-urls", f"http://127.0.0.1:{http_port}",
        "--listen-metrics-urls", f"http://127.0.0.1:{metrics_port}"))
    # gRPC on the client port
    assert run_etcdctl("3.5", "put", "k", "v", server=srv, check=True).stdout == "OK\n"
    # the JSON gateway on the HTTP listener
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}/v3/kv/range", data=b'{"key":"aw=="}', method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["kvs"][0]["value"] == "dg=="
    # metrics and health on the metrics listener
    status, text = get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200 and "etcd_server_has_leader 1" in text
    status, text = get(f"http://127.0.0.1:{metrics_port}/health")
    assert status == 200 and json.loads(text)["health"] == "true"


@pytest.mark.requires_flavour("kvetch")
def test_log_lines_are_structured_json(server_factory, flavour: str) -> None:
    srv = server_factory(flavour)
    run_etcdctl("3.5", "put", "k", "v", server=srv, check=True)
    srv.stop()
    lines = [ln for ln in srv.log_text().splitlines() if ln and not ln.startswith("=====")]
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert list(obj)[:4] == ["level", "ts", "caller", "msg"], line
        assert obj["level"] in ("debug", "info", "warn", "error")
    assert any(json.loads(ln)["msg"] == "ready to serve client requests" for ln in lines)
