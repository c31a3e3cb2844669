"""Push an OCI layout to a registry and inspect it with ``skopeo``; run a local
registry (Debian ``docker-registry``, listening on 127.0.0.1 only) for tests."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def _insecure(ref: str) -> bool:
    host = ref.split("/", 1)[0]
    return host.startswith(("127.0.0.1", "localhost", "[::1]"))


def _skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo {args[0]} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def push(layout: Path, tag: str, dest: str) -> str:
    """Copy every platform of ``layout:tag`` to ``dest`` (``host[:port]/repo:tag``); returns the index digest."""
    tls = ["--dest-tls-verify=false"] if _insecure(dest) else []
    _skopeo("copy", "--quiet", "--all", "--preserve-digests", *tls, f"oci:{layout}:{tag}", f"docker://{dest}")
    return inspect_raw(dest)[1]


def inspect_raw(ref: str) -> tuple[dict, str]:
    """The manifest (image index) at ``ref`` and its digest."""
    tls = ["--tls-verify=false"] if _insecure(ref) else []
    raw = _skopeo("inspect", "--raw", *tls, f"docker://{ref}")
    digest = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    return json.loads(raw), digest


def inspect_platform(ref: str, arch: str, variant: str = "") -> dict:
    """``skopeo inspect`` of one platform of ``ref``."""
    tls = ["--tls-verify=false"] if _insecure(ref) else []
    args = ["inspect", *tls, "--override-os", "linux", "--override-arch", arch]
    if variant:
        args += ["--override-variant", variant]
    return json.loads(_skopeo(*args, f"docker://{ref}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """``docker-registry`` on 127.0.0.1:<free port>, storage in ``root``; a context manager."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalRegistry:
        binary = shutil.which("docker-registry")
        if not binary:
            raise RuntimeError("docker-registry is not installed (Debian package docker-registry)")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.log = (self.root / "registry.log").open("wb")
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"docker-registry did not come up: {(self.root / 'registry.log').read_text()[-1000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
