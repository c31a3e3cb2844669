"""Refuse to run on an architecture kvetch does not support, unless the operator
opts in with ``KVETCH_UNSUPPORTED_ARCH=<arch>`` (etcd's ETCD_UNSUPPORTED_ARCH rule).

The supported list matches the platforms of ``support-tiers.toml`` (a release
test checks that they agree); names are Go/OCI architecture names.
"""

from __future__ import annotations

import os
import platform
import sys

SUPPORTED_ARCHES = ("amd64", "arm64", "ppc64le", "s390x")
ENV = "KVETCH_UNSUPPORTED_ARCH"
#: uname -m -> Go/OCI architecture name
_MACHINE = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
    "ppc64le": "ppc64le", "s390x": "s390x", "i386": "386", "i686": "386",
    "armv7l": "arm", "armv6l": "arm", "riscv64": "riscv64", "ppc64": "ppc64",
    "mips64": "mips64", "loongarch64": "loong64",
}


def current_arch(machine: str | None = None) -> str:
    """This machine's architecture under its Go/OCI name."""
    m = (machine or platform.machine()).lower()
    return _MACHINE.get(m, m)


def check_supported_arch(machine: str | None = None) -> None:
    """Return on a supported architecture, or when ``KVETCH_UNSUPPORTED_ARCH`` names this
    one (the variable is then removed so it is not read as a flag); else exit 1."""
    arch = current_arch(machine)
    if arch in SUPPORTED_ARCHES:
        return
    value = os.environ.pop(ENV, None)
    if value == arch:
        print(f"running kvetch on unsupported architecture {arch!r} since {ENV} is set", file=sys.stderr)
        return
    raise SystemExit(f"kvetch on unsupported platform without {ENV}={arch} set")
