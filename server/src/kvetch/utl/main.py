"""``kvetchutl``: offline tools on a member's storage (etcdutl's counterpart).

    kvetchutl snapshot status FILE [-w simple|json|table]
    kvetchutl snapshot restore FILE --data-dir DIR
    kvetchutl defrag --data-dir DIR
    kvetchutl hashkv --data-dir DIR [--rev N]
    kvetchutl version
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from kvetch.version import __version__


def _print_status(st: object, fmt: str) -> None:
    from kvetch.utl.snapshot import SnapshotStatus

    assert isinstance(st, SnapshotStatus)
    if fmt == "json":
        print(json.dumps({"hash": st.hash, "revision": st.revision, "totalKey": st.total_keys,
                          "totalSize": st.total_size}))
    elif fmt == "table":
        header = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"]
        row = [f"{st.hash:x}", str(st.revision), str(st.total_keys), _human(st.total_size)]
        widths = [max(len(h), len(r)) + 2 for h, r in zip(header, row, strict=True)]
        line = "+" + "+".join("-" * w for w in widths) + "+"
        print(line)
        print("|" + "|".join(h.center(w) for h, w in zip(header, widths, strict=True)) + "|")
        print(line)
        print("|" + "|".join(r.rjust(w - 1) + " " for r, w in zip(row, widths, strict=True)) + "|")
        print(line)
    else:
        print(f"{st.hash:x}, {st.revision}, {st.total_keys}, {_human(st.total_size)}")


def _human(n: int) -> str:
    """go-humanize's Bytes (SI units), as etcdutl prints sizes."""
    units = ["B", "kB", "MB", "GB", "TB"]
    value = float(n)
    for unit in units:
        if value < 1000 or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kvetchutl", description="Offline tools for kvetch data directories.")
    parser.add_argument("-w", "--write-out", default="simple", choices=["simple", "json", "table"])
    sub = parser.add_subparsers(dest="cmd", required=True)
    snap = sub.add_parser("snapshot", help="inspect or restore a snapshot file")
    snap_sub = snap.add_subparsers(dest="snap_cmd", required=True)
    st = snap_sub.add_parser("status", help="print hash, revision, keys and size of a snapshot")
    st.add_argument("file", type=Path)
    st.add_argument("-w", "--write-out", dest="write_out_sub", choices=["simple", "json", "table"])
    rs = snap_sub.add_parser("restore", help="create a data dir from a snapshot")
    rs.add_argument("file", type=Path)
    rs.add_argument("--data-dir", type=Path, required=True)
    rs.add_argument("--name", default="default")
    rs.add_argument("--initial-cluster", default="")
    rs.add_argument("--initial-cluster-token", default="etcd-cluster")
    rs.add_argument("--initial-advertise-peer-urls", default="")
    df = sub.add_parser("defrag", help="defragment a stopped member's backend")
    df.add_argument("--data-dir", type=Path, required=True)
    hk = sub.add_parser("hashkv", help="HashKV of a stopped member's backend")
    hk.add_argument("--data-dir", type=Path, required=True)
    hk.add_argument("--rev", type=int, default=0)
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)

    from kvetch.utl import snapshot as snapshot_mod

    try:
        if args.cmd == "version":
            print(f"kvetchutl version: {__version__}")
        elif args.cmd == "snapshot" and args.snap_cmd == "status":
            _print_status(snapshot_mod.status(args.file), args.write_out_sub or args.write_out)
        elif args.cmd == "snapshot" and args.snap_cmd == "restore":
            snapshot_mod.restore(args.file, args.data_dir)
            print(f"restored snapshot to {args.data_dir}")
        elif args.cmd == "defrag":
            from kvetch.storage.backend import Backend

            backend = Backend.open_data_dir(args.data_dir)
            try:
                before = backend.size()
                backend.defrag()
                print(f"Finished defragmenting data dir {str(args.data_dir)!r}: {before} -> {backend.size()} bytes")
            finally:
                backend.close()
        elif args.cmd == "hashkv":
            from kvetch.storage.backend import Backend
            from kvetch.storage.mvcc import KVStore

            backend = Backend.open_data_dir(args.data_dir)
            try:
                h, compact_rev, hash_rev = KVStore(backend).hash_kv(args.rev)
                print(json.dumps({"hash": h, "compact_revision": compact_rev, "hash_revision": hash_rev}))
            finally:
                backend.close()
    except (snapshot_mod.SnapshotError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
