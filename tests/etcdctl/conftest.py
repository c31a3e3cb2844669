"""etcdctl tests run once per etcdctl version (3.5.1 and Debian's 3.4.23) and flavour."""

from __future__ import annotations

from typing import Any, Protocol

import pytest
from e2e_support.etcdctl import Background, CtlResult, background_etcdctl, run_etcdctl
from e2e_support.server import Server


class Ctl(Protocol):
    version: str
    server: Server

    def __call__(self, *args: str, stdin: str | None = None, check: bool = False) -> CtlResult: ...

    def ok(self, *args: str, stdin: str | None = None) -> CtlResult: ...

    def bg(self, *args: str, stdin: str | None = None) -> Background: ...


class _Ctl:
    def __init__(self, version: str, server: Server) -> None:
        self.version = version
        self.server = server
        self._bg: list[Background] = []

    def __call__(self, *args: str, stdin: str | None = None, check: bool = False) -> CtlResult:
        return run_etcdctl(self.version, *args, server=self.server, stdin=stdin, check=check)

    def ok(self, *args: str, stdin: str | None = None) -> CtlResult:
        return self(*args, stdin=stdin, check=True)

    def bg(self, *args: str, stdin: str | None = None) -> Background:
        proc = background_etcdctl(self.version, *args, server=self.server, stdin=stdin)
        self._bg.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._bg:
            proc.close()


@pytest.fixture(params=[
    pytest.param("3.5", id="ctl35"),
    pytest.param("3.4", id="ctl34", marks=pytest.mark.etcd34),
])
def ctl(request: pytest.FixtureRequest, server: Server) -> Any:
    """etcdctl of one version bound to the test's server."""
    bound = _Ctl(request.param, server)
    yield bound
    bound.close()
