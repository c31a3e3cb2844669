"""Artifacts: sdists and wheels of every distribution (``python -m build``),
``SHA256SUMS`` over them, and a re-read verification of what was written."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

DISTRIBUTIONS = ("server", "release", "compat-matrix")
SUMS = "SHA256SUMS"


class VerifyError(RuntimeError):
    """An artifact on disk does not match what was recorded."""


def export_tree(root: Path, commit: str, dest: Path) -> Path:
    """Write the tree of ``commit`` to ``dest`` (``git archive``): builds see committed files only."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=root, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def build(tree: Path, out: Path, dists: tuple[str, ...] = DISTRIBUTIONS, isolation: bool = True) -> list[Path]:
    """Build an sdist and a wheel of each distribution found in ``tree`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for dist in dists:
        src = tree / dist
        if not (src / "pyproject.toml").exists():
            continue
        before = set(out.iterdir())
        cmd = [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(src)]
        if not isolation:
            cmd.insert(3, "--no-isolation")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"building {dist} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        made += sorted(set(out.iterdir()) - before)
    return made


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_sums(directory: Path, files: list[Path]) -> Path:
    """Write ``SHA256SUMS`` (``sha256sum`` format, sorted by name) for ``files``."""
    lines = [f"{sha256(f)}  {f.name}" for f in sorted(files, key=lambda p: p.name)]
    path = directory / SUMS
    path.write_text("\n".join(lines) + "\n")
    return path


def read_sums(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.lstrip("*")] = digest
    return out


def _verify_wheel_record(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        for row in csv.reader(io.StringIO(zf.read(record).decode())):
            if not row or not row[1]:
                continue
            algo, _, expected = row[1].partition("=")
            actual = base64.urlsafe_b64encode(hashlib.new(algo, zf.read(row[0])).digest()).rstrip(b"=").decode()
            if actual != expected:
                raise VerifyError(f"{wheel.name}: {row[0]} does not match its RECORD hash")


def verify(directory: Path, expected: dict[str, str] | None = None) -> list[str]:
    """Re-read every artifact: the sums file must list exactly the artifacts present,
    each digest must match, wheels must match their own RECORD, sdists must open.
    ``expected`` (name -> sha256, e.g. from the releases file) must match as well."""
    sums = read_sums(directory / SUMS)
    present = {p.name for p in directory.iterdir() if p.suffix in (".whl", ".gz")}
    if set(sums) != present:
        raise VerifyError(f"{SUMS} lists {sorted(set(sums) ^ present)} differently from the files present")
    for name, digest in sums.items():
        path = directory / name
        if sha256(path) != digest:
            raise VerifyError(f"{name}: sha256 differs from {SUMS}")
        if expected is not None and expected.get(name) != digest:
            raise VerifyError(f"{name}: sha256 differs from the recorded release")
        if name.endswith(".whl"):
            _verify_wheel_record(path)
        else:
            with tarfile.open(path) as tar:
                tar.getmembers()
    return sorted(sums)


def clean(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
