"""Command line of kvetch-release: ``release``, ``changelog``, ``images``, ``tiers``,
``version`` and ``verify`` (every mutating command is a dry run unless told)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import artifacts, changelog, evidence, releases, tiers, versioning
from .images import arches

console = Console(stderr=True, highlight=False)


def _root(path: str | None) -> Path:
    if path:
        return Path(path).resolve()
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "server" / "src" / "kvetch" / "version.py").exists():
            return cand
    raise SystemExit("kvetch-release: run inside the kvetch repository (or pass --root)")


def _target_version(root: Path, args: argparse.Namespace, allow_released: bool = False) -> str:
    current = versioning.read_version(root)
    released = [r.version for r in releases.load(root / "releases.toml")]
    if args.version:
        ver = versioning.parse(args.version)
    elif args.bump:
        ver = versioning.bump(current, args.bump)
    elif current in released and not allow_released:
        raise SystemExit(f"kvetch-release: v{current} is already released; pass --bump "
                         f"{'|'.join(versioning.BUMPS)} or --version X.Y.Z")
    else:
        ver = versioning.parse(current)
    if allow_released:  # rebuilding images (evidence, smoke tests) of a released version is fine
        return str(ver)
    try:
        versioning.check_new(ver, released)
    except versioning.VersionError as exc:
        raise SystemExit(f"kvetch-release: {exc}") from None
    return str(ver)


def _timings(state: dict) -> None:
    table = Table(title="release steps")
    for col in ("step", "status", "seconds"):
        table.add_column(col)
    for name, st in state["steps"].items():
        table.add_row(name, st.get("status", ""), str(st.get("seconds", "")))
    console.print(table)


def cmd_release(args: argparse.Namespace, only: tuple[str, ...] = ()) -> int:
    from .pipeline import Options, Pipeline, StepFailed

    root = _root(args.root)
    version = _target_version(root, args, allow_released=bool(only))
    out = Path(args.out).resolve() if args.out else root / "dist" / "release" / f"v{version}"
    mode = "PUBLISH" if args.publish else "dry run"
    console.rule(f"kvetch v{version} ({mode}) -> {out}")
    opts = Options(
        root=root, version=version, out=out, publish=args.publish, registry=args.registry,
        local_registry=args.local_registry, push=args.push, arches=tuple(args.arch),
        smoke_arches=tuple(args.smoke_arch) if args.smoke_arch else None, skip=tuple(args.skip),
        tests_override=args.tests_override, restart=args.restart,
        compat_report=Path(args.compat_report) if args.compat_report else None,
        **({"date": args.date} if args.date else {}),
    )
    pipe = Pipeline(opts, progress=lambda m: console.print(m, markup=False))
    try:
        with console.status("running release steps", spinner="dots"):
            state = pipe.run(only or tuple(args.only))
    except StepFailed as exc:
        console.print(f"[red]release failed[/red]: {exc}")
        _timings(pipe.state)
        console.print(f"fix it and run the same command again to resume ({pipe.state_path})")
        return 1
    _timings(state)
    if args.json:
        print(json.dumps(state, indent=2, default=str))
    return 0


def cmd_changelog(args: argparse.Namespace) -> int:
    root = _root(args.root)
    if args.check:
        ok = changelog.write(root, check=True)
        console.print("CHANGELOG.md is up to date" if ok else "[red]CHANGELOG.md is stale[/red]: run `nox -s changelog`")
        return 0 if ok else 1
    changelog.write(root)
    console.print(f"wrote {root / 'CHANGELOG.md'}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    root = _root(args.root)
    current = versioning.read_version(root)
    if not args.bump and not args.version:
        print(current)
        return 0
    new = _target_version(root, args)
    if args.write:
        versioning.write_version(root, new)
        console.print(f"{versioning.VERSION_FILE}: {current} -> {new}")
    else:
        console.print(f"would bump {current} -> {new} (pass --write)")
    print(new)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    root = _root(args.root)
    expected = None
    if args.release:
        rel = releases.find(releases.load(root / "releases.toml"), args.release)
        if rel is None:
            raise SystemExit(f"kvetch-release: v{args.release} is not in releases.toml")
        expected = {a.name: a.sha256 for a in rel.artifacts}
    try:
        names = artifacts.verify(Path(args.directory), expected)
    except (artifacts.VerifyError, OSError) as exc:
        console.print(f"[red]verification failed[/red]: {exc}")
        return 1
    console.print(f"verified {len(names)} artifacts")
    return 0


def cmd_tiers(args: argparse.Namespace) -> int:
    root = _root(args.root)
    ev_dir = Path(args.evidence) if args.evidence else root / "reports" / "evidence"
    if args.action == "collect":
        from . import collect

        collect.collect(root, ev_dir, platforms=args.platform, kinds=args.kind, progress=console.print)
    pol = tiers.load_policy(root / tiers.POLICY)
    commit = None if args.any_commit else __import__("kvetch_release.gitutil").gitutil.head(root)
    report = tiers.compute(pol, evidence.load_dir(ev_dir), commit)
    version = versioning.read_version(root)
    out = Path(args.out) if args.out else root / "reports" / "tiers"
    paths = tiers.write(report, out, version=version, releases_file=root / "releases.toml")
    console.print(tiers.to_markdown(report), markup=False)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _release_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", help="release exactly this version")
    p.add_argument("--bump", choices=versioning.BUMPS, help="bump the current version")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="publish", action="store_false", help="(default) build everything, change nothing")
    mode.add_argument("--publish", action="store_true", help="commit, tag, push images and record the release")
    p.set_defaults(publish=False)
    p.add_argument("--registry", help="push images to REGISTRY/REPO:v<version> (e.g. ghcr.io/kvetch-io/kvetch)")
    p.add_argument("--push", action="store_true", help="push to --registry even in a dry run (CI on a tag)")
    p.add_argument("--local-registry", action="store_true", help="push to a throwaway 127.0.0.1 registry and verify")
    p.add_argument("--arch", nargs="+", default=list(arches.DEFAULT), choices=list(arches.ARCHES))
    p.add_argument("--smoke-arch", nargs="+", choices=list(arches.ARCHES), help="smoke test only these")
    p.add_argument("--skip", nargs="*", default=[], help="steps to skip (e.g. images push smoke)")
    p.add_argument("--only", nargs="*", default=[], help="run only these steps (others must be done already)")
    p.add_argument("--tests-override", metavar="REASON", help="release without green test evidence, saying why")
    p.add_argument("--compat-report", help="compatibility matrix report (default reports/compat/report.json)")
    p.add_argument("--date", help="release date (default: today, UTC)")
    p.add_argument("--out", help="output directory (default dist/release/v<version>)")
    p.add_argument("--restart", action="store_true", help="ignore the saved state and redo every step")
    p.add_argument("--json", action="store_true", help="print the final state as JSON on stdout")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kvetch-release", description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="repository root (default: found from the current directory)")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="cut a release (dry run by default)")
    _release_flags(p)
    p = sub.add_parser("images", help="build (and push/smoke test) the multi-arch images only")
    _release_flags(p)
    p = sub.add_parser("changelog", help="regenerate CHANGELOG.md from changes/")
    p.add_argument("--check", action="store_true", help="only check that CHANGELOG.md is up to date")
    p = sub.add_parser("version", help="show or bump server/src/kvetch/version.py")
    p.add_argument("--bump", choices=versioning.BUMPS)
    p.add_argument("--version")
    p.add_argument("--write", action="store_true")
    p = sub.add_parser("verify", help="re-read artifacts against SHA256SUMS (and the releases file)")
    p.add_argument("directory")
    p.add_argument("--release", help="also compare with this version's entry in releases.toml")
    p = sub.add_parser("tiers", help="collect test evidence and compute the support-tier report")
    p.add_argument("action", nargs="?", choices=["report", "collect"], default="report")
    p.add_argument("--platform", nargs="*", help="platform ids to collect for (default: all in the policy)")
    p.add_argument("--kind", nargs="*", help="evidence kinds to collect (default: all with a pytest selection)")
    p.add_argument("--evidence", help="evidence directory (default reports/evidence)")
    p.add_argument("--out", help="report directory (default reports/tiers)")
    p.add_argument("--any-commit", action="store_true", help="use evidence of any commit, not only HEAD")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "release":
            return cmd_release(args)
        if args.command == "images":
            return cmd_release(args, only=("prepare", "build", "checksums", "images", "push", "smoke"))
        return {"changelog": cmd_changelog, "version": cmd_version, "verify": cmd_verify, "tiers": cmd_tiers}[
            args.command](args)
    except versioning.VersionError as exc:
        console.print(f"[red]kvetch-release[/red]: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
