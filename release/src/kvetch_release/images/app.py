"""The application layer of one architecture: the kvetch wheel and its
dependencies under ``/usr/local/lib/python3.11/dist-packages``, and launchers in
``/usr/local/bin``. Where PyPI has wheels for the architecture, ``pip`` installs
them for that platform from the host (no emulation); elsewhere the Debian
packages of the base layer provide the dependencies and the protobuf/gRPC code
is regenerated with the generator matching Debian's runtime."""

from __future__ import annotations

import configparser
import hashlib
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from .arches import Arch
from .rootfs import DEBIAN_DEPS

SITE = Path("usr/local/lib/python3.11/dist-packages")
#: generator matching Debian bookworm's python3-grpcio 1.51.1 / python3-protobuf 3.21 (runtime 4.21)
DEBIAN_GRPC_TOOLS = "grpcio-tools==1.51.1"
PY = "3.11"


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args[:3])} … failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")


def console_scripts(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next((n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")), None)
        if not name:
            return {}
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(name).decode())
    return dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}


def _launchers(stage: Path, scripts: dict[str, str]) -> None:
    bindir = stage / "usr/local/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name, target in sorted(scripts.items()):
        module, _, func = target.partition(":")
        path = bindir / name
        path.write_text(
            "#!/usr/bin/python3\nimport sys\n"
            f"from {module} import {func}\n"
            f"sys.exit({func}())\n"
        )
        path.chmod(0o755)


def _canon(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def requirements(wheel: Path) -> list[str]:
    """The wheel's unconditional Requires-Dist entries (extras and markers dropped)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    out = []
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            if ";" in req:
                continue  # extras/markers: optional
            out.append(req)
    return out


#: Debian bookworm's grpcio; grpcio-* companions are pinned to it (their generated code must
#: match Debian's protobuf runtime, and they require grpcio of their own version)
DEBIAN_GRPC = "1.51.1"


def _metadata_requires(dist_info: Path) -> list[str]:
    meta = (dist_info / "METADATA").read_text(errors="replace")
    return [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]


def install_beside_debian(arch: Arch, reqs: list[str], site: Path) -> list[str]:
    """Install the wheel's dependencies that Debian does not provide, from PyPI wheels for
    ``arch``, one package at a time with ``--no-deps`` while walking their requirements
    (pip cannot resolve against packages installed by Debian). Returns what was installed."""
    from packaging.requirements import Requirement

    env = {"python_version": PY, "python_full_version": PY + ".2", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": arch.machine, "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    plats = [a for tag in arch.pip_platforms(force=True) for a in ("--platform", tag)]
    pending = [Requirement(r) for r in reqs]
    done: set[str] = set()
    installed: list[str] = []
    while pending:
        req = pending.pop(0)
        name = _canon(req.name)
        if name in done or name in DEBIAN_DEPS or (req.marker and not req.marker.evaluate(env)):
            continue
        done.add(name)
        spec = f"{req.name}=={DEBIAN_GRPC}" if name.startswith("grpcio-") else str(req).split(";")[0]
        before = {p.name for p in site.glob("*.dist-info")}
        _pip("install", "--quiet", "--no-compile", "--no-deps", "--target", str(site), "--upgrade", *plats,
             "--python-version", PY, "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:", spec)
        installed.append(spec)
        for info in sorted({p.name for p in site.glob("*.dist-info")} - before):
            pending += [Requirement(r) for r in _metadata_requires(site / info)]
    return installed


def generator(cache: Path) -> Path:
    """A venv with the older grpcio-tools (cached); returns its python."""
    env = cache / ("protoc-" + DEBIAN_GRPC_TOOLS.split("==")[1])
    python = env / "bin" / "python"
    if not (env / ".ready").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", DEBIAN_GRPC_TOOLS], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"installing {DEBIAN_GRPC_TOOLS} failed:\n{proc.stderr[-2000:]}")
        (env / ".ready").touch()
    return python


def regenerate_protos(server_src: Path, out: Path, cache: Path) -> list[Path]:
    """Generate *_pb2.py / *_pb2_grpc.py from ``server_src``'s protos with the old generator."""
    python = generator(cache)
    protos = sorted(p.relative_to(server_src).as_posix() for p in server_src.glob("kvetch/**/*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, pathlib\nfrom grpc_tools import protoc\n"
        "inc = pathlib.Path(protoc.__file__).parent / '_proto'\n"
        "sys.exit(protoc.main(['protoc', '-I' + sys.argv[1], '-I' + str(inc), '--python_out=' + sys.argv[2],"
        " '--grpc_python_out=' + sys.argv[2], *sys.argv[3:]]))\n"
    )
    proc = subprocess.run([str(python), "-c", code, str(server_src), str(out), *protos], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"protoc ({DEBIAN_GRPC_TOOLS}) failed:\n{proc.stderr[-2000:]}")
    return sorted(p for p in out.rglob("*.py"))


def stage(arch: Arch, wheel: Path, stage_dir: Path, *, server_src: Path, cache: Path) -> dict:
    """Fill ``stage_dir`` with the app layer's files; returns facts for the image labels/evidence."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    site = stage_dir / SITE
    site.mkdir(parents=True)
    facts: dict = {"arch": arch.name}
    reqs = requirements(wheel)
    key = hashlib.sha256("\n".join([arch.name, PY, DEBIAN_GRPC, *sorted(reqs)]).encode()).hexdigest()[:16]
    deps = cache / "deps" / f"{arch.name}-{key}"
    if not (deps / ".complete").exists():
        # dependencies change far less often than kvetch itself: install them once per
        # (architecture, requirement set) and reuse them in every later build
        shutil.rmtree(deps, ignore_errors=True)
        deps.mkdir(parents=True)
        if arch.wheel_platform:
            plats = [a for tag in arch.pip_platforms() for a in ("--platform", tag)]
            _pip("install", "--quiet", "--no-compile", "--target", str(deps), *plats, "--python-version", PY,
                 "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:", *reqs)
            installed = reqs
        else:
            installed = install_beside_debian(arch, reqs, deps)
        (deps / ".complete").write_text("\n".join(installed) + "\n")
    installed = (deps / ".complete").read_text().split()
    shutil.copytree(deps, site, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(".complete"))
    _pip("install", "--quiet", "--no-compile", "--no-deps", "--target", str(site), "--upgrade", str(wheel))
    if arch.wheel_platform:
        facts["dependencies"] = f"PyPI wheels for manylinux {arch.wheel_platform}"
    else:
        from_pypi = installed
        gen = stage_dir.parent / f"protos-{arch.name}"
        if gen.exists():
            shutil.rmtree(gen)
        regenerated = regenerate_protos(server_src, gen, cache)
        replaced = 0
        for path in regenerated:
            rel = path.relative_to(gen)
            target = site / rel
            if target.exists() or target.name.endswith("_pb2.py"):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                replaced += 1
        # the generator emits empty *_pb2_grpc.py for service-less protos; keep the wheel's set only
        facts["dependencies"] = (
            f"Debian {', '.join(DEBIAN_DEPS.values())}; PyPI wheels {', '.join(from_pypi)}; "
            f"protobuf/gRPC code regenerated with {DEBIAN_GRPC_TOOLS} ({replaced} files)")
    shutil.rmtree(site / "bin", ignore_errors=True)
    _launchers(stage_dir, console_scripts(wheel))
    (stage_dir / "var/lib/kvetch").mkdir(parents=True, exist_ok=True)
    return facts
