"""The release pipeline: named steps run in order, each recorded in a state file
(``<out>/state.json``) with its result and duration, so an interrupted run
resumes where it stopped. Dry run unless ``publish`` is set: a dry run never
touches the repository (version bump, fragments, tag and releases entry are
applied to an exported copy of the tree only)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import (
    artifacts,
    changelog,
    evidence,
    fragments,
    gitutil,
    notes,
    preconditions,
    releases,
    tiers,
    versioning,
)
from .images import arches as arch_mod
from .images import build as image_build
from .images import oci, registry, smoke

STEPS = ("preconditions", "prepare", "build", "checksums", "verify", "images", "push", "smoke", "tiers",
         "notes", "publish")


class StepFailed(RuntimeError):
    pass


@dataclass
class Options:
    root: Path
    version: str
    out: Path
    publish: bool = False
    date: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).date().isoformat())
    registry: str | None = None  # host[:port]/repository, images pushed as <registry>:v<version>
    local_registry: bool = False  # start a throwaway 127.0.0.1 registry to push to and verify
    push: bool = False  # push images to ``registry`` even in a dry run (CI building an existing tag)
    arches: tuple[str, ...] = arch_mod.DEFAULT
    smoke_arches: tuple[str, ...] | None = None  # default: every built architecture
    skip: tuple[str, ...] = ()
    tests_override: str | None = None
    evidence_dir: Path | None = None
    compat_report: Path | None = None
    restart: bool = False
    isolation: bool = True
    commit: str | None = None  # the commit to release (default: HEAD when the run starts)


class Pipeline:
    def __init__(self, opts: Options, progress: Callable[[str], None] = print) -> None:
        self.o = opts
        self.say = progress
        self.commit = opts.commit or gitutil.head(opts.root)
        self.state_path = opts.out / "state.json"
        self.state = self._load_state()
        self.evidence_dir = opts.evidence_dir or opts.root / "reports" / "evidence"

    # -- state -------------------------------------------------------------
    def _load_state(self) -> dict:
        fresh = {"version": self.o.version, "commit": self.commit, "publish": self.o.publish, "steps": {}}
        if self.o.restart or not self.state_path.exists():
            return fresh
        old = json.loads(self.state_path.read_text())
        if (old.get("version"), old.get("commit"), old.get("publish")) != (self.o.version, self.commit, self.o.publish):
            self.say("state file is for another version/commit/mode: starting over")
            return fresh
        return old

    def _save(self) -> None:
        self.o.out.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(self.state, indent=2, default=str) + "\n")

    def result(self, step: str) -> dict:
        return self.state["steps"].get(step, {}).get("result", {})

    # -- running -----------------------------------------------------------
    def run(self, only: tuple[str, ...] = ()) -> dict:
        self.o.out.mkdir(parents=True, exist_ok=True)
        for step in STEPS:
            if only and step not in only:
                continue
            if step in self.o.skip:
                self.state["steps"].setdefault(step, {"status": "skipped"})
                continue
            done = self.state["steps"].get(step, {})
            if done.get("status") == "done" and step not in only:
                self.say(f"[{step}] already done ({done['seconds']}s), resuming after it")
                continue
            self.say(f"[{step}] …")
            t0 = time.monotonic()
            try:
                res = getattr(self, "step_" + step)()
            except Exception as exc:
                self.state["steps"][step] = {"status": "failed", "seconds": round(time.monotonic() - t0, 1),
                                             "error": str(exc)}
                self._save()
                raise StepFailed(f"{step}: {exc}") from exc
            self.state["steps"][step] = {"status": "done", "seconds": round(time.monotonic() - t0, 1),
                                         "result": res or {}}
            self._save()
            self.say(f"[{step}] done in {self.state['steps'][step]['seconds']}s")
        return self.state

    # -- steps -------------------------------------------------------------
    def step_preconditions(self) -> dict:
        found = preconditions.check_all(self.o.root, self.o.version, self.commit, self.evidence_dir,
                                        self.o.tests_override)
        failed = [f for f in found if not f.ok]
        for f in found:
            self.say(f"  {'ok  ' if f.ok else 'FAIL'} {f.name}: {f.detail}")
        if failed and self.o.publish:
            raise StepFailed("preconditions failed: " + "; ".join(f"{f.name}: {f.detail}" for f in failed))
        return {"checks": [f.__dict__ for f in found], "warnings": len(failed)}

    def step_prepare(self) -> dict:
        """Tree to build: version bumped, fragments moved, CHANGELOG regenerated.
        Publish: done in the repository, committed and tagged. Dry run: in an exported copy."""
        tag = f"v{self.o.version}"
        if self.o.publish:
            tree = self.o.root
        else:
            tree = self.o.out / "tree"
            if tree.exists():
                shutil.rmtree(tree)
            artifacts.export_tree(self.o.root, self.commit, tree)
        versioning.write_version(tree, self.o.version)
        moved = fragments.move_to_release(tree / "changes", self.o.version)
        # once the releases file records the date, plain regeneration gives this same text
        (tree / "CHANGELOG.md").write_text(changelog.generate(tree, upcoming=(self.o.version, self.o.date)))
        shutil.copyfile(tree / "CHANGELOG.md", self.o.out / "CHANGELOG.md")
        commit = self.commit
        if self.o.publish:
            paths = [str(versioning.VERSION_FILE), "changes", "CHANGELOG.md"]
            gitutil.git(tree, "add", "--", *paths)
            gitutil.git(tree, "commit", "-m", f"release {tag}", "--", *paths)
            gitutil.git(tree, "tag", "-a", tag, "-m", f"kvetch {tag}")
            commit = gitutil.head(tree)
        return {"tree": str(tree), "commit": commit, "fragments": len(moved)}

    def step_build(self) -> dict:
        dist = self.o.out / "dist"
        artifacts.clean(dist)
        made = artifacts.build(Path(self.result("prepare")["tree"]), dist, isolation=self.o.isolation)
        return {"dist": str(dist), "files": [p.name for p in made]}

    def step_checksums(self) -> dict:
        dist = Path(self.result("build")["dist"])
        files = [dist / n for n in self.result("build")["files"]]
        sums = artifacts.write_sums(dist, files)
        return {"file": str(sums), "sums": artifacts.read_sums(sums)}

    def step_verify(self) -> dict:
        names = artifacts.verify(Path(self.result("build")["dist"]), self.result("checksums")["sums"])
        return {"verified": names}

    def _wheel(self) -> Path:
        dist = Path(self.result("build")["dist"])
        return next(dist.glob(f"kvetch-{self.o.version}-*.whl"))

    def step_images(self) -> dict:
        commit = self.result("prepare").get("commit", self.commit)
        epoch = int(gitutil.git(self.o.root, "log", "-1", "--format=%ct", self.commit))
        res = image_build.build(tree=Path(self.result("prepare")["tree"]), wheel=self._wheel(), version=self.o.version,
                                commit=commit, out=self.o.out / "images", arches=list(self.o.arches), epoch=epoch,
                                progress=lambda m: self.say("  " + m))
        for name in res.manifests:
            evidence.write_json(self.evidence_dir / "build" / f"{name}.json", platform=self._platform_id(name),
                                kind="build", commit=self.commit, emulated=False,
                                checks=[{"name": "image build", "passed": True, "detail": res.facts[name]["dependencies"]}])
        return {"layout": str(res.layout), "tag": res.tag, "index_digest": res.index_digest,
                "manifests": res.manifests, "platforms": res.platforms, "facts": res.facts, "timings": res.timings}

    def _platform_id(self, arch: str) -> str:
        pol = tiers.load_policy(self.o.root / tiers.POLICY)
        return next((p.id for p in pol.platforms if p.arch == arch), f"linux/{arch}/py3.11")

    def _push_and_verify(self, dest: str) -> dict:
        img = self.result("images")
        digest = registry.push(Path(img["layout"]), img["tag"], dest)
        index, _ = registry.inspect_raw(dest)
        seen = {m["platform"]["architecture"] for m in index.get("manifests", [])}
        checked = {}
        for name in img["manifests"]:
            a = arch_mod.ARCHES[name]
            info = registry.inspect_platform(dest, a.name, a.variant)
            if info.get("Architecture") != a.name or name not in seen:
                raise StepFailed(f"{dest}: platform {a.platform} missing or wrong ({info.get('Architecture')})")
            checked[a.platform] = info.get("Architecture")
        if digest != img["index_digest"]:
            raise StepFailed(f"pushed index digest {digest} differs from the built {img['index_digest']}")
        return {"ref": dest, "digest": digest, "platforms": checked}

    def step_push(self) -> dict:
        tag = f"v{self.o.version}"
        if self.o.registry:
            if not (self.o.publish or self.o.push) and not registry._insecure(self.o.registry):
                self.say("  dry run: not pushing to a remote registry (use --publish)")
                return {"skipped": "dry run"}
            return self._push_and_verify(f"{self.o.registry}:{tag}")
        if self.o.local_registry:
            with registry.LocalRegistry(self.o.out / "registry") as reg:
                res = self._push_and_verify(f"{reg.host}/kvetch:{tag}")
            return {**res, "local": True}
        return {"skipped": "no registry given"}

    def step_smoke(self) -> dict:
        img = self.result("images")
        layout = oci.Layout(Path(img["layout"]))
        out = {}
        for name in img["manifests"]:
            if self.o.smoke_arches is not None and name not in self.o.smoke_arches:
                continue
            a = arch_mod.ARCHES[name]
            root = self.o.out / "smoke" / name
            if root.exists():
                shutil.rmtree(root)
            layout.unpack(img["tag"], name, root)
            self.say(f"  {a.platform}: smoke test")
            checks = smoke.run(root, a, self.o.version)
            evidence.write_json(self.evidence_dir / "smoke" / f"{name}.json", platform=self._platform_id(name),
                                kind="smoke", commit=self.commit, emulated=a.name != arch_mod.host().name, checks=checks)
            out[name] = checks
            shutil.rmtree(root, ignore_errors=True)
            for c in checks:
                self.say(f"    {'ok  ' if c['passed'] else 'FAIL'} {c['name']} ({c['seconds']}s) {c['detail'][:160]}")
        return {"results": out}

    def step_tiers(self) -> dict:
        pol = tiers.load_policy(self.o.root / tiers.POLICY)
        report = tiers.compute(pol, evidence.load_dir(self.evidence_dir), self.commit)
        paths = tiers.write(report, self.o.out / "tiers", version=self.o.version,
                            releases_file=self.o.root / "releases.toml")
        return {"tiers": {p["id"]: p["tier"] for p in report["platforms"]}, **{k: str(v) for k, v in paths.items()}}

    def step_notes(self) -> dict:
        tiers_md = None
        if self.result("tiers").get("markdown"):
            tiers_md = Path(self.result("tiers")["markdown"]).read_text()
        images = []
        pushed = self.result("push")
        if pushed.get("ref") and not pushed.get("local") and not registry._insecure(pushed["ref"]):
            images.append({"ref": pushed["ref"], "digest": pushed["digest"], "platforms": sorted(pushed["platforms"])})
        text = notes.generate(Path(self.result("prepare")["tree"]), self.o.version, self.o.date,
                              sums=self.result("checksums").get("sums", {}), images=images, tiers_markdown=tiers_md,
                              compat_report=self.o.compat_report or self.o.root / "reports" / "compat" / "report.json")
        path = self.o.out / f"RELEASE-NOTES-v{self.o.version}.md"
        path.write_text(text)
        return {"file": str(path)}

    def step_publish(self) -> dict:
        entry = releases.Release(
            version=self.o.version, commit=self.result("prepare")["commit"], date=self.o.date,
            artifacts=tuple(releases.Artifact(n, d) for n, d in sorted(self.result("checksums")["sums"].items())),
            images=tuple(
                [releases.Image(self.result("push")["ref"], self.result("push")["digest"],
                                tuple(sorted(self.result("push")["platforms"])))]
                if self.result("push").get("ref") and not self.result("push").get("local") else []
            ),
            tiers=self.result("tiers").get("tiers", {}),
        )
        preview = self.o.out / "releases.toml"
        current = self.o.root / "releases.toml"
        preview.write_text(releases.dumps([*releases.load(current), entry]))
        if not self.o.publish:
            return {"releases_preview": str(preview), "published": False}
        releases.append(current, entry)
        gitutil.git(self.o.root, "add", "--", "releases.toml")
        gitutil.git(self.o.root, "commit", "-m", f"releases: record v{self.o.version}", "--", "releases.toml")
        remote = gitutil.git(self.o.root, "remote").split()
        if remote:
            gitutil.git(self.o.root, "push", remote[0], f"v{self.o.version}", "HEAD")
        return {"releases_file": str(current), "published": True, "pushed_to": remote[:1]}
