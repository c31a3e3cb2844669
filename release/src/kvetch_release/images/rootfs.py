"""Debian root filesystems per architecture, made with ``mmdebstrap`` in its
``extract`` variant (packages unpacked, no maintainer script run, so no emulation
is needed) from the mirror apt already uses, cached by content key."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from .arches import Arch

SUITE = "bookworm"
#: every image: the interpreter (Python 3.11 in bookworm) and CA certificates
BASE_PACKAGES = ("python3", "ca-certificates", "tzdata", "libstdc++6")
#: server dependencies taken from Debian on architectures where PyPI has no grpcio wheel
#: (key: PyPI name, as in the wheel's Requires-Dist); the others still come from PyPI
#: wheels for that architecture (aiohttp and prometheus_client: Debian's are too old)
DEBIAN_DEPS = {
    "grpcio": "python3-grpcio", "protobuf": "python3-protobuf", "lmdb": "python3-lmdb",
    "crc32c": "python3-crc32c", "pyyaml": "python3-yaml", "rich": "python3-rich",
}
#: extra packages of the test root filesystem (emulated test runs)
TEST_PACKAGES = ("python3-pytest", "python3-hypothesis")


def cache_dir() -> Path:
    base = os.environ.get("KVETCH_RELEASE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kvetch-release")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def apt_sources() -> list[str]:
    """``deb URI SUITE main`` lines for the Debian mirror(s) apt is configured with."""
    uris: list[str] = []
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        uris += re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
        uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE)
    main = next((u for u in uris if re.search(r"/debian/?$", u)), "http://deb.debian.org/debian").rstrip("/")
    lines = [f"deb {main} {SUITE} main", f"deb {main} {SUITE}-updates main"]
    security = next((u for u in uris if re.search(r"/debian-security/?$", u)), None)
    if security:
        lines.append(f"deb {security.rstrip('/')} {SUITE}-security main")
    return lines


def packages_for(arch: Arch, test: bool = False) -> tuple[str, ...]:
    pkgs = list(BASE_PACKAGES)
    if not arch.wheel_platform:
        pkgs += DEBIAN_DEPS.values()
    if test:
        pkgs += TEST_PACKAGES
    return tuple(pkgs)


def build(arch: Arch, packages: tuple[str, ...], *, cache: Path | None = None, sources: list[str] | None = None) -> Path:
    """A tarball of the root filesystem (cached: same arch, packages and mirror -> same file)."""
    cache = cache or cache_dir()
    sources = sources or apt_sources()
    key = hashlib.sha256("\n".join([arch.debian, SUITE, *sorted(packages), *sources]).encode()).hexdigest()[:16]
    out = cache / "rootfs" / f"{SUITE}-{arch.debian}-{key}.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.tar")
    errors = []
    # A mirror caught mid-sync for one suite (seen with bookworm-security on ppc64el) must
    # not stop the build: fall back to fewer suites, always keeping the main one.
    for attempt in (sources, sources[:2], sources[:1]):
        cmd = [
            "mmdebstrap", "--quiet", "--format=tar", "--variant=extract", f"--architectures={arch.debian}",
            "--include=" + ",".join(packages), "--skip=output/dev",
            SUITE, str(tmp), *attempt,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            tmp.rename(out)
            out.with_suffix(".sources").write_text("\n".join(attempt) + "\n")
            return out
        tmp.unlink(missing_ok=True)
        errors.append(proc.stderr[-1500:])
    raise RuntimeError(f"mmdebstrap failed for {arch.debian}:\n" + "\n".join(errors))


def available() -> bool:
    return shutil.which("mmdebstrap") is not None
