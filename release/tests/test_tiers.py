"""Tier computation from fixture evidence, the policy file, and the platform check."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from kvetch_release import evidence, tiers

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
COMMIT = "c0ffee" + "0" * 34


@pytest.fixture(scope="module")
def policy() -> tiers.Policy:
    return tiers.load_policy(ROOT / tiers.POLICY)


def test_tiers_from_fixture_evidence(policy: tiers.Policy) -> None:
    report = tiers.compute(policy, evidence.load_dir(FIXTURES), COMMIT)
    got = {p["id"]: p["tier"] for p in report["platforms"]}
    assert got == {
        "linux/amd64/py3.11": 1,  # everything incl. robustness
        "linux/arm64/py3.11": 2,  # robustness only for another commit
        "linux/ppc64le/py3.11": 3,  # unit tests fail
        "linux/s390x/py3.11": 0,  # smoke put/get failed
    }
    s390x = next(p for p in report["platforms"] if p["arch"] == "s390x")
    assert s390x["evidence"]["smoke"]["status"] == "fail"
    assert "put/get" in s390x["evidence"]["smoke"]["detail"]
    assert s390x["evidence"]["unit"]["status"] == "fail"  # zero tests ran: not evidence of passing
    arm = next(p for p in report["platforms"] if p["arch"] == "arm64")
    assert arm["evidence"]["robustness"]["status"] == "missing"
    assert arm["evidence"]["unit"]["emulated"] is True
    assert tiers.supported_arches(report) == ["amd64", "arm64", "ppc64le"]


def test_any_commit_counts_older_evidence(policy: tiers.Policy) -> None:
    report = tiers.compute(policy, evidence.load_dir(FIXTURES), None)
    assert next(p for p in report["platforms"] if p["arch"] == "arm64")["tier"] == 1


def test_untagged_junit_is_not_evidence() -> None:
    assert all("untagged" not in r.source for r in evidence.load_dir(FIXTURES))


def test_no_evidence_means_unsupported(policy: tiers.Policy, tmp_path: Path) -> None:
    report = tiers.compute(policy, evidence.load_dir(tmp_path), COMMIT)
    assert {p["tier"] for p in report["platforms"]} == {0}


def test_tag_junit_round_trip(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite name="pytest" tests="4" failures="0" errors="0" skipped="1">'
                   '<testcase name="a"/></testsuite></testsuites>')
    evidence.tag_junit(xml, platform="linux/arm64/py3.11", kind="unit", commit=COMMIT, emulated=True)
    evidence.tag_junit(xml, platform="linux/arm64/py3.11", kind="unit", commit=COMMIT, emulated=True)
    props = ET.parse(xml).getroot().findall(".//property")
    assert len(props) == 4  # re-tagging replaces, never duplicates
    (run,) = evidence.load_dir(tmp_path)
    assert (run.platform, run.kind, run.tests, run.skipped, run.passed, run.emulated) == (
        "linux/arm64/py3.11", "unit", 4, 1, True, True)


def test_outputs(policy: tiers.Policy, tmp_path: Path) -> None:
    report = tiers.compute(policy, evidence.load_dir(FIXTURES), COMMIT)
    paths = tiers.write(report, tmp_path, version="0.1.0", releases_file=tmp_path / "none.toml")
    assert json.loads(paths["json"].read_text())["platforms"][0]["tier"] == 1
    md = paths["markdown"].read_text()
    assert "| linux/s390x/py3.11 | Unsupported |" in md
    assert "| linux/amd64/py3.11 | Tier 1 |" in md


def test_policy_rejects_undeclared_evidence(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[tier]]\nlevel = 1\nname = "T1"\nrequires = ["fuzz"]\n[evidence.unit]\n'
                   '[[platform]]\nid = "linux/amd64/py3.11"\narch = "amd64"\npython = "3.11"\n')
    with pytest.raises(ValueError, match="undeclared evidence"):
        tiers.load_policy(bad)


def test_policy_tiers_follow_etcd(policy: tiers.Policy) -> None:
    t1, t2, t3 = policy.tiers
    assert "robustness" in t1.requires and "robustness" not in t2.requires
    assert {"unit", "integration", "e2e"} <= set(t2.requires)
    assert set(t3.requires) == {"build", "smoke"}


def test_server_platform_check_matches_policy(policy: tiers.Policy) -> None:
    from kvetch import platform_check

    assert set(platform_check.SUPPORTED_ARCHES) == {p.arch for p in policy.platforms}


def test_platform_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kvetch import platform_check as pc

    monkeypatch.delenv(pc.ENV, raising=False)
    pc.check_supported_arch("x86_64")
    pc.check_supported_arch("aarch64")
    with pytest.raises(SystemExit, match="unsupported platform without KVETCH_UNSUPPORTED_ARCH=riscv64 set"):
        pc.check_supported_arch("riscv64")
    monkeypatch.setenv(pc.ENV, "arm")  # names another arch: still refused
    with pytest.raises(SystemExit):
        pc.check_supported_arch("riscv64")
    monkeypatch.setenv(pc.ENV, "riscv64")
    pc.check_supported_arch("riscv64")
    assert "unsupported architecture 'riscv64'" in capsys.readouterr().err
