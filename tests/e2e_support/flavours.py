"""Server flavours: which implementation a test talks to.

``etcd`` is real etcd 3.5.1; ``kvetch`` is the server under test. The list
comes from ``KVETCH_E2E_FLAVOURS`` (comma separated, default both). There is
no silent skipping: a flavour in the list that cannot start fails its tests.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FLAVOURS = ("etcd", "kvetch")
DEFAULT_FLAVOURS = "etcd,kvetch"


def flavours_from_env() -> list[str]:
    raw = os.environ.get("KVETCH_E2E_FLAVOURS", DEFAULT_FLAVOURS)
    chosen = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FLAVOURS]
    if unknown:
        raise ValueError(f"KVETCH_E2E_FLAVOURS: unknown flavour(s) {unknown}; known: {FLAVOURS}")
    return chosen


def server_command(flavour: str) -> list[str]:
    """argv prefix that starts a member of ``flavour`` (flags are etcd's)."""
    if flavour == "etcd":
        from e2e_support.binaries import etcd_binary

        return [etcd_binary()]
    if flavour == "kvetch":
        override = os.environ.get("KVETCH_E2E_KVETCH")
        if override:
            return override.split()
        script = shutil.which("kvetch")
        if script is None:
            candidate = Path(sys.executable).parent / "kvetch"
            if candidate.exists():
                script = str(candidate)
        return [script] if script else [sys.executable, "-m", "kvetch.main"]
    raise ValueError(f"unknown flavour {flavour!r}")
