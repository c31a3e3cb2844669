"""Smoke test of one architecture's image: unpack it into a root filesystem and
run its server there (natively, or under qemu user emulation registered through
binfmt_misc): ``kvetch --version``, then a put and a get through the server."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from .arches import Arch, host
from .registry import free_port

BINFMT = Path("/proc/sys/fs/binfmt_misc")


def ensure_binfmt(arch: Arch) -> str:
    """Make foreign binaries of ``arch`` runnable; returns how ("native", "binfmt", "qemu-prefix")."""
    if arch.name == host().name:
        return "native"
    entry = BINFMT / f"qemu-{arch.qemu}"
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True)
    if not entry.exists() and (BINFMT / "register").exists():
        conf = Path(f"/usr/lib/binfmt.d/qemu-{arch.qemu}.conf")
        if conf.exists():
            with contextlib.suppress(OSError):
                (BINFMT / "register").write_text(conf.read_text().strip())
    if entry.exists() and "enabled" in entry.read_text() and "F" in _flags(entry):
        return "binfmt"
    if shutil.which(f"qemu-{arch.qemu}-static"):
        return "qemu-prefix"
    raise RuntimeError(f"cannot run {arch.name} binaries: no binfmt_misc entry and no qemu-{arch.qemu}-static")


def _flags(entry: Path) -> str:
    for line in entry.read_text().splitlines():
        if line.startswith("flags:"):
            return line.split(":", 1)[1]
    return ""


def prepare_root(root: Path, arch: Arch, mode: str) -> list[str]:
    """Device nodes the interpreter needs, and the command prefix for ``mode``."""
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        node = dev / name
        if not node.exists():
            os.mknod(node, 0o20666, os.makedev(1, minor))
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    if mode == "qemu-prefix":
        qemu = f"/usr/bin/qemu-{arch.qemu}-static"
        shutil.copyfile(qemu, root / qemu.lstrip("/"))
        (root / qemu.lstrip("/")).chmod(0o755)
        return [shutil.which("chroot") or "/usr/sbin/chroot", str(root), qemu]
    return [shutil.which("chroot") or "/usr/sbin/chroot", str(root)]


def _gateway(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _put_get(port: int, key: str, value: str) -> str:
    """Put then get through the server; ``etcdctl`` when available, else the JSON gateway."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    etcdctl = shutil.which("etcdctl")
    if etcdctl:
        env = {**os.environ, "ETCDCTL_API": "3"}
        ep = f"--endpoints=http://127.0.0.1:{port}"
        subprocess.run([etcdctl, ep, "--command-timeout=10s", "put", key, value], env=env, check=True,
                       capture_output=True, text=True, timeout=30)
        out = subprocess.run([etcdctl, ep, "--command-timeout=10s", "get", key, "--print-value-only"], env=env,
                             check=True, capture_output=True, text=True, timeout=30).stdout
        return out.strip()
    _gateway(port, "/v3/kv/put", {"key": b64(key), "value": b64(value)})
    kvs = _gateway(port, "/v3/kv/range", {"key": b64(key)}).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else ""


def run(root: Path, arch: Arch, expected_version: str, *, startup_timeout: float = 180) -> list[dict]:
    """The smoke checks on an unpacked image root; each check is {name, passed, detail, seconds}."""
    checks: list[dict] = []
    mode = ensure_binfmt(arch)
    prefix = prepare_root(root, arch, mode)
    started = time.monotonic()
    proc = subprocess.run([*prefix, "/usr/local/bin/kvetch", "--version"], capture_output=True, text=True, timeout=300)
    out = (proc.stdout + proc.stderr).strip()
    checks.append({"name": "kvetch --version", "passed": proc.returncode == 0 and expected_version in out,
                   "detail": f"[{mode}] " + out[-400:], "seconds": round(time.monotonic() - started, 1)})
    if not checks[-1]["passed"]:
        checks.append({"name": "put/get", "passed": False, "detail": "skipped: kvetch --version failed", "seconds": 0})
        return checks
    started = time.monotonic()
    port = free_port()
    data = tempfile.mkdtemp(prefix="smoke-", dir=root / "tmp")
    log = (root / "tmp" / "kvetch-smoke.log").open("wb")
    server = subprocess.Popen(
        [*prefix, "/usr/local/bin/kvetch", "--data-dir", "/tmp/" + Path(data).name,
         "--listen-client-urls", f"http://127.0.0.1:{port}", "--advertise-client-urls", f"http://127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    detail, ok = "", False
    try:
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and server.poll() is None:
            try:
                got = _put_get(port, "smoke/key", f"kvetch-{arch.name}")
                ok = got == f"kvetch-{arch.name}"
                detail = f"got {got!r}"
                break
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                detail = repr(exc)[-300:]
                time.sleep(0.5)
        if server.poll() is not None:
            detail = f"server exited {server.returncode}: " + (root / "tmp" / "kvetch-smoke.log").read_text()[-600:]
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
    checks.append({"name": "put/get", "passed": ok, "detail": f"[{mode}] {detail}",
                   "seconds": round(time.monotonic() - started, 1)})
    return checks
