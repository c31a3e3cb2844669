"""Collect test evidence: run the policy's pytest selections natively on this
machine, and the declared emulated subset inside each foreign architecture's
Debian root filesystem under qemu user emulation; tag every JUnit XML with its
platform, kind and commit."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import artifacts, evidence, gitutil, tiers
from .images import app, rootfs, smoke
from .images.arches import ARCHES, host


def _slug(pid: str) -> str:
    return pid.replace("/", "-")


def _existing(root: Path, selection: list[str]) -> list[str]:
    return [s for s in selection if s.startswith("-") or (root / s).exists()]


def run_native(root: Path, out: Path, platform: str, kind: str, selection: list[str], commit: str,
               timeout: float = 1800) -> Path | None:
    paths = _existing(root, selection)
    if not [p for p in paths if not p.startswith("-")]:
        return None
    xml = out / _slug(platform) / f"{kind}.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *paths]
    if importlib.util.find_spec("xdist"):
        cmd[3:3] = ["-n", "2"]
    subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    if not xml.exists():
        return None
    evidence.tag_junit(xml, platform=platform, kind=kind, commit=commit, emulated=False)
    return xml


def test_root(root: Path, arch_name: str, work: Path, cache: Path) -> Path:
    """A root filesystem of ``arch`` with Debian's pytest, the server installed as in
    the image (same dependency route) and the repository's tests under /work."""
    arch = ARCHES[arch_name]
    target = work / f"root-{arch.name}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    tar = rootfs.build(arch, rootfs.packages_for(arch, test=True), cache=cache)
    with tarfile.open(tar) as tf:
        tf.extractall(target, members=[m for m in tf.getmembers() if not (m.ischr() or m.isblk())],
                      filter="fully_trusted")
    wheels = work / "wheel"
    if not any(wheels.glob("kvetch-*.whl")):
        artifacts.build(root, wheels, ("server",))
    wheel = next(wheels.glob("kvetch-*.whl"))
    stage = work / f"stage-{arch.name}"
    app.stage(arch, wheel, stage, server_src=root / "server" / "src", cache=cache)
    shutil.copytree(stage, target, dirs_exist_ok=True, symlinks=True)
    dest = target / "work"
    for part in ("server/tests", "tests/conftest.py"):
        src = root / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / part)
    return target


def run_emulated(root: Path, out: Path, platform: str, arch_name: str, kind: str, selection: list[str], commit: str,
                 work: Path, cache: Path, timeout: float = 1800) -> Path | None:
    paths = [p for p in _existing(root, selection) if not p.startswith("-")]
    if not paths:
        return None
    arch = ARCHES[arch_name]
    troot = work / f"root-{arch.name}"
    if not troot.exists():
        troot = test_root(root, arch_name, work, cache)
    mode = smoke.ensure_binfmt(arch)
    prefix = smoke.prepare_root(troot, arch, mode)
    xml_in = f"/work/{kind}.xml"
    cmd = [*prefix, "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "--rootdir=/work", f"--junitxml={xml_in}", *[f"/work/{p}" for p in paths]]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    produced = troot / xml_in.lstrip("/")
    xml = out / _slug(platform) / f"{kind}.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    (xml.with_suffix(".log")).write_text(proc.stdout[-20000:] + proc.stderr[-20000:])
    if not produced.exists():
        # pytest could not even start: that is evidence too (a failing run)
        return evidence.write_json(xml.with_suffix(".json"), platform=platform, kind=kind, commit=commit,
                                   emulated=True, checks=[{"name": "pytest " + " ".join(paths), "passed": False,
                                                           "detail": (proc.stderr or proc.stdout)[-500:]}])
    shutil.copyfile(produced, xml)
    evidence.tag_junit(xml, platform=platform, kind=kind, commit=commit, emulated=True)
    return xml


def collect(root: Path, out: Path, *, platforms: list[str] | None = None, kinds: list[str] | None = None,
            progress: Callable[[str], None] = print) -> list[Path]:
    """Run what the policy declares for each platform; return the evidence files written."""
    pol = tiers.load_policy(root / tiers.POLICY)
    commit = gitutil.head(root)
    me = host().name
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    written: list[Path] = []
    cache = rootfs.cache_dir()
    with tempfile.TemporaryDirectory(prefix="kvetch-evidence-") as tmp:
        work = Path(tmp)
        for plat in pol.platforms:
            if platforms and plat.id not in platforms:
                continue
            for kind, spec in pol.evidence.items():
                if kinds and kind not in kinds:
                    continue
                t0 = time.monotonic()
                if plat.runner == "native" and plat.arch == me and plat.python == pyver and spec.get("pytest"):
                    path = run_native(root, out, plat.id, kind, list(spec["pytest"]), commit)
                elif plat.runner == "qemu" and spec.get("emulated"):
                    path = run_emulated(root, out, plat.id, plat.arch, kind, list(spec["emulated"]), commit, work, cache)
                else:
                    continue
                progress(f"{plat.id} {kind}: {path or 'nothing to run'} ({time.monotonic() - t0:.1f}s)")
                if path:
                    written.append(path)
    return written
