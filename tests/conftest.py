"""Fixtures of the end-to-end suite.

Every e2e test asks for ``server`` (or ``server_factory``) and runs once per
flavour in ``KVETCH_E2E_FLAVOURS`` (default ``etcd,kvetch``). A test marked
``@pytest.mark.requires_flavour("kvetch")`` runs only for those flavours; when
none of them is selected it is reported as skipped with the reason (never
silently dropped). On failure the tail of every server log the test used is
attached to the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_support.flavours import flavours_from_env
from e2e_support.server import Server

_SERVERS = pytest.StashKey[list[Server]]()
LOG_TAIL_LINES = int(os.environ.get("KVETCH_E2E_LOG_LINES", "40"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvetch-e2e")
    group.addoption("--diff-seed", action="append", type=int, default=None,
                    help="differential tests: run only these seeds (repeatable); env KVETCH_DIFF_SEED")
    group.addoption("--diff-steps", type=int, default=None,
                    help="differential tests: operations per seed; env KVETCH_DIFF_STEPS")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires_flavour(*names): run only for these server flavours (e2e)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flavour" not in metafunc.fixturenames:
        return
    chosen = flavours_from_env()
    marker = metafunc.definition.get_closest_marker("requires_flavour")
    if marker is None:
        metafunc.parametrize("flavour", chosen, scope="function")
        return
    allowed = [f for f in chosen if f in marker.args]
    if allowed:
        metafunc.parametrize("flavour", allowed, scope="function")
    else:
        reason = (f"needs flavour {'/'.join(marker.args)}; KVETCH_E2E_FLAVOURS selects "
                  f"{','.join(chosen)}")
        metafunc.parametrize(
            "flavour", [pytest.param("-".join(marker.args), marks=pytest.mark.skip(reason=reason))])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for srv in item.stash.get(_SERVERS, []):
            report.sections.append(
                (f"{srv.flavour} log {srv.name} ({srv.log_path})", srv.log_tail(LOG_TAIL_LINES)))
    return report


ServerFactory = Callable[..., Server]


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers of any flavour: ``server_factory("etcd", name="a")``."""
    started: list[Server] = []
    request.node.stash.setdefault(_SERVERS, [])

    def make(flavour: str, name: str = "default", extra_args: tuple[str, ...] = (),
             start: bool = True) -> Server:
        srv = Server(flavour, tmp_path / f"{flavour}-{name}-{len(started)}", name=name,
                     extra_args=extra_args)
        started.append(srv)
        request.node.stash[_SERVERS].append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(flavour: str, server_factory: ServerFactory) -> Server:
    """A fresh single-member server of the current flavour."""
    return server_factory(flavour)
