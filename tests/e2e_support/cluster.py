"""Multi-member clusters of real processes on loopback, for the replicated-mode tests.

``start_cluster(flavour, n, workdir)`` starts ``n`` members with one
``--initial-cluster`` (each member's own flags as in :class:`Server`), waits
until every member serves a linearizable read, and returns the members.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

from e2e_support.server import Server


class Member(Server):
    """A cluster member: the same process handling as Server, with cluster flags."""

    def __init__(self, flavour: str, workdir: Path, name: str, extra_args: list[str] | None = None,
                 command: list[str] | None = None) -> None:
        super().__init__(flavour, workdir, name=name, extra_args=extra_args or [])
        #: argv prefix of the binary to run (another build of kvetch); None = the default one
        self.command = command
        self.initial_cluster = f"{name}={self.peer_url}"
        self.cluster_state = "new"
        self.token = "kvetch-test-cluster"
        # test-only failpoint of kvetch's peer transport: peers listed here are cut off
        self.partition_file = self.workdir / "partition"

    def argv(self) -> list[str]:
        base = super().argv()
        if self.command is not None:
            base = [*self.command, *base[base.index("--name"):]]
        return [*base, "--initial-cluster", self.initial_cluster, "--initial-cluster-state", self.cluster_state,
                "--initial-cluster-token", self.token, "--heartbeat-interval", "100", "--election-timeout", "1000"]

    def launch(self) -> None:
        """Start the process without waiting for it to serve (it may need peers first)."""
        import os
        import subprocess

        argv = self.argv()
        env = dict(os.environ, KVETCH_FAILPOINT_PARTITION_FILE=str(self.partition_file))
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)

    def start(self, timeout: float = 30.0) -> Member:  # type: ignore[override]
        self.launch()
        self.wait_ready(timeout)
        return self

    def cut_off(self, peers: list[Member]) -> None:
        """Drop all traffic between this member and ``peers`` (kvetch failpoint)."""
        ids = [f"{p.status().header.member_id:x}" for p in peers]
        self.partition_file.write_text("\n".join(ids) + "\n")

    def heal(self) -> None:
        self.partition_file.unlink(missing_ok=True)

    def status(self, timeout: float = 2.0) -> rpc_pb2.StatusResponse:
        return rpc_pb2_grpc.MaintenanceStub(self.channel()).Status(rpc_pb2.StatusRequest(), timeout=timeout)


def start_cluster(flavour: str, n: int, workdir: Path, timeout: float = 60.0,
                  extra_args: list[str] | None = None, commands: list[list[str] | None] | None = None,
                  ) -> list[Member]:
    cmds = commands or [None] * n
    members = [Member(flavour, workdir / f"m{i}", f"m{i}", extra_args=extra_args, command=cmds[i])
               for i in range(n)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.initial_cluster = initial
        m.launch()
    for m in members:
        m.wait_ready(timeout)
    return members


def leader_of(members: list[Member], timeout: float = 30.0) -> Member:
    """The member that is leader, agreed by every running member."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = set()
        try:
            for m in members:
                if m.is_running():
                    leaders.add(m.status().leader)
        except grpc.RpcError:
            leaders = set()
        if len(leaders) == 1 and 0 not in leaders:
            lid = leaders.pop()
            for m in members:
                if m.is_running() and m.status().header.member_id == lid:
                    return m
        if time.monotonic() > deadline:
            raise TimeoutError(f"no agreed leader among {members}")
        time.sleep(0.05)


def member_ids(members: list[Member]) -> dict[str, int]:
    return {m.name: m.status().header.member_id for m in members if m.is_running()}


def dump(obj: object) -> str:
    return json.dumps(obj, default=str)
