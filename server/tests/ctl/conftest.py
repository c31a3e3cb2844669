"""Differential harness: the same command lines through real etcdctl 3.5.1 and kvetchctl.

Two fresh single-member servers (A and B, started the same way) get the same
sequence of commands: etcdctl talks to A, kvetchctl to B, so revisions, raft
indexes and values line up. Outputs are compared after replacing what
legitimately differs between two servers: ports, member and cluster IDs,
lease IDs (registered by the tests) and measured durations.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import kvetch
import pytest
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

_spec = importlib.util.spec_from_file_location(
    "kvetch_client_test_servers", Path(__file__).resolve().parent.parent / "client" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
servers = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = servers
    _spec.loader.exec_module(servers)
cluster_factory = servers.cluster_factory  # re-exported fixtures
server = servers.server
etcd_tool = servers.etcd_tool
Member = servers.Member

SRC = str(Path(kvetch.__file__).resolve().parent.parent)


def kvetchctl_cmd() -> list[str]:
    return [sys.executable, "-m", "kvetch.ctl.main"]


def ctl_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["ETCDCTL_API"] = "3"
    for k in list(env):
        if k.startswith("ETCDCTL_") and k != "ETCDCTL_API":
            del env[k]
    return env


@dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclass
class Pair:
    a: Member  # etcdctl's server
    b: Member  # kvetchctl's server
    subs_a: dict[str, str] = field(default_factory=dict)
    subs_b: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for m, subs in ((self.a, self.subs_a), (self.b, self.subs_b)):
            with servers.grpc.insecure_channel(m.endpoint) as ch:
                st = rpc_pb2_grpc.MaintenanceStub(ch).Status(rpc_pb2.StatusRequest(), timeout=5)
            cid, mid = st.header.cluster_id, st.header.member_id
            subs.update({
                str(m.client_port): "CPORT", str(m.peer_port): "PPORT",
                str(cid): "CLUSTER", f"{cid:x}": "CLUSTER",
                str(mid): "MEMBER", f"{mid:x}": "MEMBER",
            })

    def register(self, id_a: int, id_b: int, name: str) -> None:
        """Two IDs that play the same role on A and B (leases, added members)."""
        for v, subs in ((id_a, self.subs_a), (id_b, self.subs_b)):
            subs[str(v)] = name
            subs[f"{v:016x}"] = name
            subs[f"{v:x}"] = name

    def norm(self, s: str, subs: dict[str, str]) -> str:
        s = re.sub(r"took = \S+", "took = T", s)
        # "%16x" pads IDs shorter than 16 hex digits with spaces ("Member  1f... added to cluster ...")
        s = re.sub(r"(Member|cluster) +", r"\1 ", s)
        s = re.sub(r'"took":"[^"]*"', '"took":"T"', s)
        s = re.sub(r'"Took" : \S+', '"Took" : T', s)
        for k in sorted(subs, key=len, reverse=True):
            s = re.sub(rf"(?<![0-9a-f]){re.escape(k)}(?![0-9a-f])", subs[k], s)
        return s

    def etcdctl(self, *args: str, stdin: str | None = None, timeout: float = 30) -> Result:
        p = subprocess.run(
            [etcd_tool("etcdctl"), "--endpoints", self.a.endpoint, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, env=ctl_env(),
        )
        return Result(p.returncode, self.norm(p.stdout, self.subs_a), self.norm(_drop_logs(p.stderr), self.subs_a))

    def kvetchctl(self, *args: str, stdin: str | None = None, timeout: float = 30) -> Result:
        p = subprocess.run(
            [*kvetchctl_cmd(), "--endpoints", self.b.endpoint, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, env=ctl_env(),
        )
        return Result(p.returncode, self.norm(p.stdout, self.subs_b), self.norm(p.stderr, self.subs_b))

    def both(self, *args: str, stdin: str | None = None, stderr: bool = True) -> tuple[Result, Result]:
        ra = self.etcdctl(*args, stdin=stdin)
        rb = self.kvetchctl(*args, stdin=stdin)
        return ra, rb

    def same(self, *args: str, stdin: str | None = None, stderr: bool = True) -> Result:
        """Run on both and assert identical stdout, exit code (and stderr)."""
        ra, rb = self.both(*args, stdin=stdin)
        out_a, out_b = ra.out, rb.out
        if out_a.startswith("+-") and out_b.startswith("+-"):
            # a table's column widths follow the (random) member IDs' length; compare the cells
            assert len(out_a.splitlines()) == len(out_b.splitlines())
            out_a, out_b = _squeeze(out_a), _squeeze(out_b)
        assert out_b == out_a, f"stdout differs for {args}:\netcdctl:\n{ra.out}\nkvetchctl:\n{rb.out}\n{rb.err}"
        assert rb.rc == ra.rc, f"exit code differs for {args}: {ra.rc} vs {rb.rc} ({ra.err!r} / {rb.err!r})"
        if stderr:
            assert rb.err == ra.err, f"stderr differs for {args}: {ra.err!r} vs {rb.err!r}"
        return ra


def _squeeze(table: str) -> str:
    return re.sub(r"[ -]+", " ", table)


def _drop_logs(err: str) -> str:
    """etcdctl's client logs JSON lines (zap) on stderr; kvetchctl does not."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith('{"level"'))


@pytest.fixture
def pair(cluster_factory: Callable[..., object]) -> Pair:
    a = cluster_factory(1, prefix="n").members[0]  # type: ignore[attr-defined]
    b = cluster_factory(1, prefix="n").members[0]  # type: ignore[attr-defined]
    return Pair(a, b)
