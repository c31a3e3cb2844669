"""Known-failure matching (every failing element must be covered) and the flavour adapters' flag tables."""

from __future__ import annotations

from typing import Any

from kvetch_compat import known
from kvetch_compat.flavours import EtcdFlavour, KvetchFlavour, MemberConfig
from kvetch_compat.versions import Resolved, VersionSpec, major_minor

CELL_VERSIONS = ["etcd@3.4.23", "etcd@3.5.1"]


def _cell(action_ok: bool, action: str, checks: list[tuple[str, str]], logs: list[str]) -> dict[str, Any]:
    step = {"n": 2, "outcome": "fail", "action_result": {"ok": action_ok, "detail": action},
            "checks": [{"name": n, "ok": False, "detail": d} for n, d in checks], "logs": logs}
    return {"kind": "downgrade-binary-only", "versions": CELL_VERSIONS, "outcome": "fail", "steps": [step]}


FATAL = '{"level":"fatal","msg":"invalid downgrade; server version is lower than determined cluster version"}'


def test_recorded_finding_becomes_known() -> None:
    cell = _cell(False, "m0 did not become healthy", [("alive-healthy", "m0: process exited (rc=1)")], [FATAL])
    out = known.apply(cell, known.load(known.DEFAULT_FILE))
    assert out["outcome"] == "known" and out["known"] == ["F3"]


def test_an_extra_unexplained_failure_keeps_the_step_failing() -> None:
    cell = _cell(False, "m0 did not become healthy",
                 [("alive-healthy", "m0: process exited (rc=1)"), ("hashkv", "m1=1, m2=2")], [])
    cell["steps"][0]["logs"] = []
    out = known.apply(cell, known.load(known.DEFAULT_FILE))
    assert out["outcome"] == "fail"


def test_known_entries_are_scoped_to_their_versions() -> None:
    cell = _cell(False, "x", [("alive-healthy", "m0 exited")], [FATAL])
    cell["versions"] = ["kvetch@0.1.0", "kvetch@0.2.0"]
    assert known.apply(cell, known.load(known.DEFAULT_FILE))["outcome"] == "fail"


def _flavour(cls: type, spec: str, version: str) -> Any:
    return cls(Resolved(VersionSpec.parse(spec), version, ["/bin/server"]))


def test_flag_names_follow_etcd_renames() -> None:
    e34 = _flavour(EtcdFlavour, "etcd@3.4.23", "3.4.23")
    e35 = _flavour(EtcdFlavour, "etcd@3.5.1", "3.5.1")
    e36 = _flavour(EtcdFlavour, "etcd@3.6.0", "3.6.0")
    assert e34.flag("downgrade-check-time") is None
    assert e35.flag("downgrade-check-time") == "--experimental-downgrade-check-time"
    assert e36.flag("downgrade-check-time") == "--downgrade-check-time"
    assert not e34.supports_downgrade_api and e35.supports_downgrade_api
    cfg = MemberConfig("m0", "/d", "http://127.0.0.1:1", "http://127.0.0.1:2", "m0=http://127.0.0.1:2", "new", "t")
    argv34 = e34.argv(cfg)
    assert argv34[:3] == ["/bin/server", "--name", "m0"] and "--logger" in argv34
    assert "--experimental-downgrade-check-time" in e35.argv(cfg)


def test_kvetch_gets_only_the_contract_flags() -> None:
    kv = _flavour(KvetchFlavour, "kvetch@HEAD", "0.1.0")
    cfg = MemberConfig("m0", "/d", "http://127.0.0.1:1", "http://127.0.0.1:2", "m0=http://127.0.0.1:2", "existing", "t")
    flags = [a for a in kv.argv(cfg) if a.startswith("--")]
    assert flags == ["--name", "--data-dir", "--listen-client-urls", "--advertise-client-urls", "--listen-peer-urls",
                     "--initial-advertise-peer-urls", "--initial-cluster", "--initial-cluster-state",
                     "--initial-cluster-token"]
    assert major_minor(kv.version) == (0, 1)
