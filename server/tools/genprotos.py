"""Regenerate the Python protobuf/gRPC modules from every .proto under src/kvetch.

Usage: python tools/genprotos.py [--check] [--out DIR]

The generated *_pb2.py, *_pb2_grpc.py and *_pb2.pyi files are committed next to
their .proto sources. ``--check`` regenerates into a temporary tree and exits
non-zero if any committed file differs (the `protos` nox session and a test use it).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")


def proto_files() -> list[Path]:
    return sorted(SRC.glob("kvetch/**/*.proto"))


def generate(out: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) over every proto; return generated paths relative to out."""
    from grpc_tools import protoc  # imported late: only the generator needs grpcio-tools

    protos = [str(p.relative_to(SRC)) for p in proto_files()]
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{SRC}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = []
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name.endswith(SUFFIXES):
            rel = path.relative_to(out)
            # services-free protos still get an (empty) *_pb2_grpc.py; drop those
            if path.name.endswith("_pb2_grpc.py") and "class " not in path.read_text():
                continue
            generated.append(rel)
    return generated


def committed() -> set[Path]:
    return {
        p.relative_to(SRC)
        for p in SRC.glob("kvetch/**/*")
        if p.is_file() and p.name.endswith(SUFFIXES)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = generate(out)
        if opts.check:
            stale = [str(rel) for rel in fresh if not (SRC / rel).exists()
                     or not filecmp.cmp(out / rel, SRC / rel, shallow=False)]
            extra = sorted(str(p) for p in committed() - set(fresh))
            if stale or extra:
                print("generated protobuf code is stale; run `nox -s protos`", file=sys.stderr)
                for name in stale:
                    print(f"  differs: {name}", file=sys.stderr)
                for name in extra:
                    print(f"  no longer generated: {name}", file=sys.stderr)
                return 1
            print(f"{len(fresh)} generated files up to date")
            return 0
        for stale_file in committed() - set(fresh):
            (SRC / stale_file).unlink()
        for rel in fresh:
            shutil.copyfile(out / rel, SRC / rel)
        print(f"wrote {len(fresh)} generated files")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
