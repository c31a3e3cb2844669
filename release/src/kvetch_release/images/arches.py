"""Facts about each target architecture: Debian, OCI, wheel and qemu names."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    name: str  # OCI / Go name: amd64, arm64, ppc64le, s390x
    debian: str  # Debian architecture
    machine: str  # uname -m
    variant: str  # OCI platform variant ("" when none)
    wheel_platform: str  # manylinux machine for pip --platform, "" when PyPI lacks wheels (grpcio) -> Debian
    qemu: str  # qemu-user binary suffix

    def pip_platforms(self, glibc_minor: int = 36, force: bool = False) -> list[str]:
        """pip ``--platform`` tags for Debian bookworm's glibc 2.36, newest first (pip does not expand
        them). Empty for architectures whose server deps come from Debian, unless ``force``."""
        if not self.wheel_platform and not force:
            return []
        m = self.wheel_platform or self.machine
        tags = [f"manylinux_2_{n}_{m}" for n in range(glibc_minor, 16, -1)] + [f"manylinux2014_{m}"]
        return tags + ([f"manylinux2010_{m}", f"manylinux1_{m}"] if m == "x86_64" else [])

    @property
    def platform(self) -> str:
        return f"linux/{self.name}" + (f"/{self.variant}" if self.variant else "")


ARCHES = {
    a.name: a
    for a in (
        Arch("amd64", "amd64", "x86_64", "", "x86_64", "x86_64"),
        Arch("arm64", "arm64", "aarch64", "v8", "aarch64", "aarch64"),
        Arch("ppc64le", "ppc64el", "ppc64le", "", "", "ppc64le"),
        Arch("s390x", "s390x", "s390x", "", "", "s390x"),
    )
}
DEFAULT = tuple(ARCHES)


def host() -> Arch:
    machine = _platform.machine()
    return next(a for a in ARCHES.values() if a.machine == machine)


def get(name: str) -> Arch:
    try:
        return ARCHES[name.removeprefix("linux/").split("/")[0]]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r} (one of {', '.join(ARCHES)})") from None
