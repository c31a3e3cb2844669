"""What every command gets: the global flags, a client factory and the printer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kvetch.client import TLS, Client

from .errors import EXIT_BAD_ARGS, CtlError
from .printers import Printer

_DUR = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(s: str) -> float:
    """Go ``time.ParseDuration`` (the subset flags use: ``5s``, ``500ms``, ``1m30s``)."""
    s = s.strip()
    if s in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DUR.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise CtlError(f'time: invalid duration "{s}"', EXIT_BAD_ARGS)
    return total


@dataclass
class Ctx:
    endpoints: list[str]
    dial_timeout: float
    command_timeout: float
    printer: Printer
    write_out: str
    is_hex: bool = False
    user: str | None = None
    password: str | None = None
    tls: TLS | None = None
    _clients: list[Client] = field(default_factory=list)

    def client(self, endpoints: list[str] | None = None) -> Client:
        c = Client(
            endpoints or self.endpoints,
            timeout=self.command_timeout,
            dial_timeout=self.dial_timeout,
            user=self.user,
            password=self.password,
            tls=self.tls,
        )
        self._clients.append(c)
        return c

    async def close(self) -> None:
        for c in self._clients:
            await c.close()
        self._clients.clear()
