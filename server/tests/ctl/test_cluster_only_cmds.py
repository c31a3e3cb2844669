"""Commands that need a multi-member cluster or that etcdctl 3.5.1 lacks (downgrade: 3.6's output)."""

from __future__ import annotations

import re
import subprocess

from .conftest import ctl_env, etcd_tool, kvetchctl_cmd


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=ctl_env())


def leader_and_others(eps: list[str]) -> tuple[int, list[int]]:
    out = run([*kvetchctl_cmd(), "--endpoints", ",".join(eps), "endpoint", "status", "-w", "fields"]).stdout
    ids = [int(x) for x in re.findall(r'"MemberID" : (\d+)', out)]
    leader = int(re.findall(r'"Leader" : (\d+)', out)[0])
    return leader, [i for i in ids if i != leader]


def test_move_leader_same_output_as_etcdctl(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    eps = cluster_factory(3).endpoints
    leader, others = leader_and_others(eps)
    r = run([etcd_tool("etcdctl"), "--endpoints", ",".join(eps), "move-leader", f"{others[0]:x}"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Leadership transferred from {leader:x} to {others[0]:x}\n"
    leader2, others2 = leader_and_others(eps)
    assert leader2 == others[0]
    r = run([*kvetchctl_cmd(), "--endpoints", ",".join(eps), "move-leader", f"{others2[0]:x}"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Leadership transferred from {leader2:x} to {others2[0]:x}\n"
    assert leader_and_others(eps)[0] == others2[0]
    # a target that is not a member: same error and exit code from both tools
    ra = run([etcd_tool("etcdctl"), "--endpoints", ",".join(eps), "move-leader", "1234"])
    rb = run([*kvetchctl_cmd(), "--endpoints", ",".join(eps), "move-leader", "1234"])
    assert (rb.returncode, rb.stdout) == (ra.returncode, ra.stdout)
    assert rb.stderr.splitlines()[-1] == ra.stderr.splitlines()[-1]


def test_downgrade_commands(server) -> None:  # type: ignore[no-untyped-def]
    ctl = [*kvetchctl_cmd(), "--endpoints", server.endpoint]
    st = run([*ctl, "endpoint", "status", "-w", "fields"]).stdout
    major_minor = ".".join(re.findall(r'"Version" : "([^"]+)"', st)[0].split(".")[:2])
    r = run([*ctl, "downgrade", "validate", "3.0.0"])
    assert r.returncode == 1 and r.stderr == "Error: etcdserver: invalid downgrade target version\n"
    r = run([*ctl, "downgrade", "validate"])
    assert r.returncode == 128 and r.stderr == "Error: TARGET_VERSION not provided\n"
    r = run([*ctl, "downgrade", "cancel"])
    assert r.returncode == 1 and r.stderr == "Error: etcdserver: no inflight downgrade job\n"
    major, minor = (int(x) for x in major_minor.split("."))
    r = run([*ctl, "downgrade", "validate", f"{major}.{minor - 1}"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Downgrade validate success, cluster version {major_minor}.0\n"


def test_lease_keep_alive_stream(server) -> None:  # type: ignore[no-untyped-def]
    ctl = [*kvetchctl_cmd(), "--endpoints", server.endpoint]
    grant = run([*ctl, "lease", "grant", "3"]).stdout
    lid = re.findall(r"lease ([0-9a-f]{16})", grant)[0]
    p = subprocess.Popen([*ctl, "lease", "keep-alive", lid], stdout=subprocess.PIPE, text=True, env=ctl_env())
    try:
        assert p.stdout is not None
        first = p.stdout.readline()
        assert first == f"lease {lid} keepalived with TTL(3)\n"
        run([etcd_tool("etcdctl"), "--endpoints", server.endpoint, "lease", "revoke", lid])
        rest = p.stdout.read()
        assert p.wait(20) == 0
        assert rest.endswith(f"lease {lid} expired or revoked.\n")
    finally:
        p.kill()
        p.wait()


def test_version_has_etcdctl_shape() -> None:
    ra = run([etcd_tool("etcdctl"), "version"])
    rb = run([*kvetchctl_cmd(), "version"])
    assert ra.stdout == "etcdctl version: 3.5.1\nAPI version: 3.5\n"
    # kvetch's own version (server/src/kvetch/version.py), in etcdctl's shape
    assert re.fullmatch(r"kvetchctl version: \d+\.\d+\.\d+\S*\nAPI version: 3\.5\n", rb.stdout), rb.stdout


def test_three_member_cluster_views_match(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    eps = ",".join(cluster_factory(3).endpoints)
    for args in (
        ["member", "list", "-w", "table"],
        ["member", "list", "-w", "json"],
        ["member", "list"],
        ["endpoint", "status", "--cluster", "-w", "table"],
        ["endpoint", "status", "-w", "json"],
        ["endpoint", "status", "--cluster", "-w", "fields"],
        ["endpoint", "hashkv", "--cluster", "-w", "table"],
        ["endpoint", "hashkv", "-w", "json"],
    ):
        ra = run([etcd_tool("etcdctl"), "--endpoints", eps, *args])
        rb = run([*kvetchctl_cmd(), "--endpoints", eps, *args])
        # which member answers a balanced call differs (header member_id); the rest must not
        def answered_by(out: str) -> str:
            return re.sub(r'^\{"header":\{"cluster_id":(\d+),"member_id":\d+', r'{"header":{"cluster_id":\1,"member_id":M', out)

        assert (rb.returncode, answered_by(rb.stdout)) == (ra.returncode, answered_by(ra.stdout)), args


def test_unreachable_endpoint_error() -> None:
    from .conftest import servers

    ep = f"127.0.0.1:{servers.free_port()}"
    args = ["--endpoints", ep, "--dial-timeout", "500ms", "--command-timeout", "1s", "get", "k"]
    ra = run([etcd_tool("etcdctl"), *args])
    rb = run([*kvetchctl_cmd(), *args])
    assert (rb.returncode, rb.stdout) == (ra.returncode, ra.stdout) == (1, "")
    assert rb.stderr == ra.stderr.splitlines(keepends=True)[-1] == "Error: context deadline exceeded\n"
