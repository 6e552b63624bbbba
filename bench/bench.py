"""parity's benchmark (``nox -s bench``): it measures and reports, it never asserts.

    python bench/bench.py [--sizes 50,200,1000] [--runs 3] [--docker auto|yes|no]
                          [--kustomize-budget 120] [--kustomize-limit 600]
                          [--compose-runs 3] [--kind-runs 1] [--skip SECTIONS]
                          [--out FILE]

Sections (one table at the end, and bench/results.json):

1. render  - the repository's stack, all six mode/phase combinations; synthetic
             stacks of N services (bench/synth.py) against ``kubectl kustomize`` on
             the equivalent base + overlay tree, generated and rendered in the same
             run. parity cold = a fresh interpreter per run (imports and parsing
             included); parity warm = in-process, layers already parsed (cached by
             content hash). Medians of --runs. kustomize is superlinear: a run over
             --kustomize-budget s is not repeated, one over --kustomize-limit s is
             stopped and reported as that many seconds (a lower bound).
   emit    - on the 200-service output: parity's emitter (PyYAML + libyaml) against
             ruamel.yaml round-trip, the same documents.
2. diff    - the model-level parity diff compose -> kind on the same stacks.
3. startup - ``inv --list``, ``inv render --mode kind --phase 3``, ``inv status`` (no
             environment running), subprocess wall time, medians of 5.
4. offline - ``inv validate-offline`` (the work of ``nox -s validate``).
5. compose - ``inv up --mode compose --phase 1 --profile offline`` against raw
             ``docker compose up -d --wait`` on the same rendered file, and a repeated
             ``inv up`` with nothing changed (time, containers recreated). Needs a
             Docker engine; ``inv down`` between and at the end: it REMOVES a running
             parity compose environment of this checkout (volumes included).
6. kind    - the kind lane, offline profile: building its images (node image, edge,
             services; cold only on a machine that never built them), then per run
             ``inv up --mode kind`` phase 1 and phase 3 from no cluster (images
             built), each followed by a repeated ``up`` with nothing changed (time,
             pods replaced or restarted). Where Docker cannot run ``--privileged``
             it runs through testbin/docker-shim (decision 0010) and says so. It
             REMOVES a parity kind cluster of this checkout (``inv down``).

Sections 3 (status), 4, 5 and 6 run Docker commands; ``--docker no`` skips them.
Set BENCH_SRC=/path/to/other/src to time another copy of the engine (the render,
emit and diff rows use it; the inv rows always run this checkout's tasks.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = os.environ.get("BENCH_SRC") or str(ROOT / "src")
sys.path.insert(0, SRC)
sys.path.insert(0, str(HERE))

import synth  # noqa: E402

PY = sys.executable
INV = str(Path(PY).with_name("inv")) if Path(PY).with_name("inv").exists() else "inv"
KUBECTL = ["kubectl", "--kubeconfig", os.devnull]
KUST_PER = "kustomize, patch per service"
KUST_ONE = "kustomize, one patch for all"


# --------------------------------------------------------------------------- helpers

class Results:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, section: str, case: str, parity: list[float] | None,
            reference: list[float] | None = None, ref_name: str = "", note: str = "",
            **extra) -> dict:
        p = statistics.median(parity) if parity else None
        r = statistics.median(reference) if reference else None
        row = {"section": section, "case": case,
               "parity_s": _round(p), "parity_runs": [_round(x) for x in parity or []],
               "reference": ref_name or None, "reference_s": _round(r),
               "reference_runs": [_round(x) for x in reference or []],
               "ratio": round(p / r, 3) if p is not None and r else None,
               "note": note, **extra}
        self.rows.append(row)
        ref = f"  {ref_name} {r:.3f}s ratio {row['ratio']}" if r is not None else ""
        shown = f"{p:.3f}s" if p is not None else "-"
        print(f"  {section:<8} {case:<38} parity {shown}{ref}  {note}", flush=True)
        return row


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def timed(cmd: list[str], cwd: Path = ROOT, env: dict | None = None,
          timeout: float | None = None, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - t
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return elapsed, proc


def repeat(n: int, fn) -> list[float]:
    return [fn() for _ in range(n)]


def child_env() -> dict:
    env = dict(os.environ)
    env["BENCH_SRC"] = SRC
    return env


def machine(docker: bool) -> dict:
    info: dict = {"cores": os.cpu_count(), "platform": platform.platform(),
                  "python": platform.python_version(),
                  "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    info["kubectl"] = _out(KUBECTL + ["version", "--client"])
    if docker:
        info["docker"] = _out(["docker", "version", "--format",
                               "client {{.Client.Version}}, engine {{.Server.Version}}"])
        info["compose"] = _out(["docker", "compose", "version", "--short"])
    import yaml

    info["pyyaml_libyaml"] = bool(getattr(yaml, "__with_libyaml__", False))
    return info


def _out(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return " ".join(proc.stdout.split()) or None


def docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                              timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# --------------------------------------------------------------------------- 1+2: render, diff

def parity_cold(root: Path, *args: str) -> float:
    return timed([PY, str(HERE / "_once.py"), args[0], str(root), *args[1:]],
                 env=child_env())[0]


def parity_warm(fn, runs: int) -> list[float]:
    fn()  # fill the layer cache (and import everything)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def render_fn(root: Path, mode: str, phase: int):
    from parity import cli, model
    from parity.render import RenderContext, render

    return lambda: render(model.load(root, cli.selection(mode, phase)).stack, RenderContext())


def diff_fn(root: Path, phase: int):
    from parity import cli

    return lambda: cli.diff(root, "compose", "kind", phase, "model", "text")


def kustomize(overlay: Path, runs: int, budget: float, limit: float
              ) -> tuple[list[float], int, str]:
    """``kubectl kustomize`` wall times. After a first run longer than ``budget``
    seconds the rest are skipped (a ratio that large needs no median); a run longer
    than ``limit`` seconds is stopped and counts as ``limit`` (a lower bound)."""
    samples: list[float] = []
    docs = 0
    note = ""
    for _ in range(runs):
        try:
            elapsed, proc = timed(KUBECTL + ["kustomize", str(overlay)], cwd=overlay,
                                  timeout=limit)
        except subprocess.TimeoutExpired:
            samples.append(limit)
            note = f"kustomize stopped after {limit:.0f} s: its time is a lower bound"
            break
        samples.append(elapsed)
        docs = proc.stdout.count("\nkind: ") + proc.stdout.startswith("kind: ")
        if elapsed > budget:
            break
    if not note and len(samples) < runs:
        note = f"kustomize: {len(samples)} run (longer than {budget:.0f} s)"
    return samples, docs, note


def bench_render_default(res: Results, runs: int) -> None:
    print("render: the repository's stack", flush=True)
    for mode in ("compose", "kind"):
        for phase in (1, 2, 3):
            cold = repeat(runs, lambda: parity_cold(ROOT, "render", mode, str(phase)))
            warm = parity_warm(render_fn(ROOT, mode, phase), runs)
            res.add("render", f"default {mode}:{phase} cold", cold)
            res.add("render", f"default {mode}:{phase} warm", warm)


def bench_synthetic(res: Results, sizes: list[int], runs: int, budget: float,
                    limit: float, workdir: Path) -> None:
    for n in sizes:
        print(f"render/diff: synthetic stack of {n} services", flush=True)
        root = synth.write_parity(workdir / f"parity-{n}", n)
        overlays = synth.write_kustomize(workdir / f"kustomize-{n}", n)
        k, docs, knote = kustomize(overlays["per-service"], runs, budget, limit)
        k1, docs1, knote1 = kustomize(overlays["one-patch"], runs, budget, limit)
        cold = repeat(runs, lambda: parity_cold(root, "render", "kind", "2"))
        warm = parity_warm(render_fn(root, "kind", 2), runs)
        files = render_fn(root, "kind", 2)()
        pdocs = files["manifests.yaml"].count("\n---\n") + 1
        size = dict(n=n, parity_docs=pdocs, kustomize_docs=docs)
        res.add("render", f"{n} services kind:2 cold", cold, k, KUST_PER, knote, **size)
        res.add("render", f"{n} services kind:2 warm", warm, k, KUST_PER, knote, **size)
        res.add("render", f"{n} services kind:2 cold", cold, k1, KUST_ONE, knote1, n=n,
                parity_docs=pdocs, kustomize_docs=docs1)
        cold = repeat(runs, lambda: parity_cold(root, "render", "compose", "2"))
        warm = parity_warm(render_fn(root, "compose", 2), runs)
        res.add("render", f"{n} services compose:2 cold", cold, n=n)
        res.add("render", f"{n} services compose:2 warm", warm, n=n)
        cold = repeat(runs, lambda: parity_cold(root, "diff", "2"))
        warm = parity_warm(diff_fn(root, 2), runs)
        res.add("diff", f"{n} services compose->kind:2 cold", cold, n=n)
        res.add("diff", f"{n} services compose->kind:2 warm", warm, n=n)
        if n == emit_size(sizes):
            bench_emit(res, files["manifests.yaml"], n, runs)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir / f"kustomize-{n}", ignore_errors=True)


def emit_size(sizes: list[int]) -> int | None:
    """The stack whose output the emitter comparison uses: 200 services (about 1 MB
    of YAML) when measured, else the largest."""
    return 200 if 200 in sizes else max(sizes, default=None)


def bench_emit(res: Results, text: str, n: int, runs: int) -> None:
    """parity's emitter (PyYAML + libyaml, yamlio.dump_all) against ruamel.yaml
    round-trip on the same documents: why the output path does not use ruamel."""
    import io

    import yaml
    from ruamel.yaml import YAML

    from parity.yamlio import dump_all

    docs = [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d]

    def ruamel_dump() -> None:
        y = YAML(typ="rt")
        y.explicit_start = True
        y.dump_all(docs, io.StringIO())

    ours = repeat(runs, lambda: _clock(lambda: dump_all(docs)))
    theirs = repeat(runs, lambda: _clock(ruamel_dump))
    res.add("emit", f"{n} services kind:2 ({len(text) / 1e6:.1f} MB)", ours, theirs,
            "ruamel.yaml round-trip dump", n=n)


def _clock(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- 3+4: startup, offline

def bench_startup(res: Results, docker: bool) -> None:
    print("startup: inv subprocess wall time", flush=True)
    cases = [("inv --list", [INV, "--list"]),
             ("inv render --mode kind --phase 3", [INV, "render", "--mode", "kind", "--phase", "3"])]
    if docker:
        cases.append(("inv status (no environment)", [INV, "status"]))
    for name, cmd in cases:
        check = name != "inv status (no environment)"  # exits 1: services missing
        samples = repeat(5, lambda: timed(cmd, check=check)[0])
        res.add("startup", name, samples, note="median of 5")


def bench_offline(res: Results, runs: int) -> None:
    print("offline: inv validate-offline", flush=True)
    samples = []
    for _ in range(runs):
        elapsed, proc = timed([INV, "validate-offline"], check=False)
        samples.append(elapsed)
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
    res.add("offline", "inv validate-offline (6 combinations)", samples,
            note=f"exit {proc.returncode}: {tail}")


# --------------------------------------------------------------------------- 5: compose

RECREATED = re.compile(r"(\d+) containers created or recreated")
UP = [INV, "up", "--mode", "compose", "--phase", "1", "--profile", "offline"]
DOWN = [INV, "down", "--mode", "compose", "--phase", "1", "--profile", "offline"]


def _recreated(proc: subprocess.CompletedProcess) -> int | None:
    m = RECREATED.search(proc.stdout + proc.stderr)
    return int(m.group(1)) if m else None


def bench_compose(res: Results, runs: int) -> None:
    print("compose: inv up vs docker compose up -d --wait", flush=True)
    compose_file = ROOT / ".parity" / "build" / "compose" / "phase1" / "docker-compose.yaml"
    raw = ["docker", "compose", "-p", "parity", "-f", str(compose_file), "up", "-d", "--wait"]
    first_up: list[float] = []
    up: list[float] = []
    again: list[float] = []
    again_recreated: list[int | None] = []
    raw_up: list[float] = []
    raw_again: list[float] = []
    try:
        timed(DOWN, timeout=600, check=False)
        # the first up may build the offline images; it is reported on its own
        elapsed, proc = timed(UP, timeout=3600)
        first_up.append(elapsed)
        for _ in range(runs):
            timed(DOWN, timeout=600)
            elapsed, proc = timed(UP, timeout=1800)
            up.append(elapsed)
            elapsed, proc = timed(UP, timeout=1800)
            again.append(elapsed)
            again_recreated.append(_recreated(proc))
            timed(DOWN, timeout=600)
            raw_up.append(timed(raw, timeout=1800)[0])
            raw_again.append(timed(raw, timeout=1800)[0])
    finally:
        timed(DOWN, timeout=600, check=False)
    res.add("compose", "first inv up (may build images)", first_up)
    res.add("compose", "inv up (fresh containers)", up, raw_up, "docker compose up -d --wait")
    res.add("compose", "inv up again, nothing changed", again, raw_again,
            "docker compose up -d --wait (again)",
            note=f"recreated: {again_recreated}", recreated=again_recreated)


# --------------------------------------------------------------------------- 6: kind

def _kind_env() -> tuple[dict, str]:
    """The environment for the kind lane's commands, and a note saying whether they
    run through decision 0010's shim (only where the engine cannot run --privileged)."""
    sys.path.insert(0, str(ROOT / "src"))
    from parity import docker as pdocker

    env = {k: v for k, v in os.environ.items() if not k.startswith("PARITY_")}
    env["PARITY_IMAGE_PROFILE"] = "offline"
    ok, _ = pdocker.privileged_probe()
    if ok is False:
        env["PATH"] = f"{ROOT / 'testbin' / 'docker-shim'}{os.pathsep}{env['PATH']}"
        return env, "through testbin/docker-shim (no --privileged here)"
    return env, ""


def _pods(phase: int) -> dict:
    """Every pod of the stack and the edge: uid and restart counts."""
    from parity import cli

    driver = cli.lane(ROOT, cli.selection("kind", phase, "offline"), quiet=True)
    out = {}
    for ns in ("parity", "parity-system"):
        for pod in driver.kube.list("v1", "Pod", ns):
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            out[pod["metadata"]["uid"]] = sum(c.get("restartCount", 0) for c in statuses)
    return out


def bench_kind(res: Results, runs: int) -> None:
    print("kind: inv up --mode kind (offline profile), cold cluster and no-op", flush=True)
    env, note = _kind_env()
    down = [INV, "down", "--mode", "kind"]
    images = [INV, "images", "--mode", "kind", "--phase", "3", "--profile", "offline"]
    build = [timed(images, env=env, timeout=7200)[0]]
    ups: dict[int, list[float]] = {1: [], 3: []}
    again: dict[int, list[float]] = {1: [], 3: []}
    changed: dict[int, list[int]] = {1: [], 3: []}
    try:
        for _ in range(runs):
            for phase in (1, 3):
                timed(down, env=env, timeout=600)
                up = [INV, "up", "--mode", "kind", "--phase", str(phase)]
                ups[phase].append(timed(up, env=env, timeout=3600)[0])
                before = _pods(phase)
                again[phase].append(timed(up, env=env, timeout=3600)[0])
                after = _pods(phase)
                changed[phase].append(len(set(before) ^ set(after)) + sum(
                    after[u] - before[u] for u in set(before) & set(after)))
    finally:
        timed(down, env=env, timeout=600, check=False)
    res.add("kind", "inv images --mode kind --phase 3 (offline; may build)", build,
            note=note)
    for phase in (1, 3):
        res.add("kind", f"inv up --mode kind --phase {phase} (no cluster, images built)",
                ups[phase], note=note)
        res.add("kind", f"inv up --mode kind --phase {phase} again, nothing changed",
                again[phase], note=f"pods replaced or restarted: {changed[phase]}",
                changed=changed[phase])


# --------------------------------------------------------------------------- report

def table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="parity benchmark (seconds, medians)", title_justify="left")
    for col in ("section", "case", "parity", "reference", "ref", "ratio", "note"):
        t.add_column(col, justify="right" if col in ("parity", "ref", "ratio") else "left")
    for r in rows:
        t.add_row(r["section"], r["case"], _fmt(r["parity_s"]), r["reference"] or "",
                  _fmt(r["reference_s"]), f"{r['ratio']:.3f}" if r["ratio"] else "",
                  r["note"])
    Console(width=160).print(t)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def targets(rows: list[dict]) -> dict:
    """The issue's targets, judged from this run (reported, never asserted)."""
    by = {r["case"]: r for r in rows}
    out: dict = {}
    for ref in (KUST_PER, KUST_ONE):
        big = [r for r in rows if r["case"] == "1000 services kind:2 cold"
               and r["reference"] == ref and r["reference_s"]]
        if big:
            out[f"render 1000 services <= kubectl {ref}"] = {
                "parity_s": big[0]["parity_s"], "kustomize_s": big[0]["reference_s"],
                "met": big[0]["parity_s"] <= big[0]["reference_s"]}
    r = by.get("inv --list")
    if r:
        out["inv --list < 0.3 s"] = {"s": r["parity_s"], "met": r["parity_s"] < 0.3}
    r = by.get("inv validate-offline (6 combinations)")
    if r:
        out["offline validate < 5 s"] = {"s": r["parity_s"], "met": r["parity_s"] < 5}
    r = by.get("inv up again, nothing changed")
    if r and r["parity_s"] is not None:
        rec = r.get("recreated") or []
        out["repeated inv up < 2 s, 0 recreated"] = {
            "s": r["parity_s"], "recreated": rec,
            "met": r["parity_s"] < 2 and bool(rec) and all(x == 0 for x in rec)}
    for phase in (1, 3):
        r = by.get(f"inv up --mode kind --phase {phase} again, nothing changed")
        if r and r["parity_s"] is not None:
            changed = r.get("changed") or []
            out[f"repeated kind up phase {phase} < 15 s, no pod restarted"] = {
                "s": r["parity_s"], "changed": changed,
                "met": r["parity_s"] < 15 and bool(changed) and not any(changed)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="50,200,1000", help="synthetic stack sizes")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--docker", choices=("auto", "yes", "no"), default="auto",
                    help="run the Docker sections (auto: where an engine answers)")
    ap.add_argument("--kustomize-budget", type=float, default=120.0,
                    help="after a kustomize run longer than this, do not repeat it")
    ap.add_argument("--kustomize-limit", type=float, default=600.0,
                    help="stop a kustomize run after this many seconds (a lower bound)")
    ap.add_argument("--compose-runs", type=int, default=3)
    ap.add_argument("--kind-runs", type=int, default=1)
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: "
                    "default,synthetic,startup,offline,compose,kind")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    docker = {"yes": True, "no": False}.get(args.docker)
    if docker is None:
        docker = docker_ok()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    info = machine(docker)
    print(f"machine: {info}", flush=True)
    res = Results()
    started = time.perf_counter()

    def section(name: str, fn, *a) -> None:
        """Run one section; a failure is reported as a row, the others still run."""
        try:
            fn(res, *a)
        except Exception as exc:  # a benchmark reports, it does not stop
            res.add(name, "error", None, note=f"{type(exc).__name__}: {exc}"[:300])

    with tempfile.TemporaryDirectory(prefix="parity-bench-") as tmp:
        if "default" not in skip:
            section("render", bench_render_default, args.runs)
        if "synthetic" not in skip:
            section("render", bench_synthetic, sizes, args.runs, args.kustomize_budget,
                    args.kustomize_limit, Path(tmp))
    if "startup" not in skip:
        section("startup", bench_startup, docker)
    if docker and "offline" not in skip:
        section("offline", bench_offline, args.runs)
    if docker and "compose" not in skip:
        section("compose", bench_compose, args.compose_runs)
    if docker and "kind" not in skip:
        section("kind", bench_kind, args.kind_runs)
    if not docker:
        print("no Docker engine (or --docker no): inv status, validate-offline and the "
              "compose section were not run", flush=True)
    goals = targets(res.rows)
    table(res.rows)
    for name, t in goals.items():
        print(f"target {name}: {'met' if t['met'] else 'NOT met'} {t}")
    Path(args.out).resolve().write_text(json.dumps(
        {"machine": info, "docker": docker, "runs": args.runs, "sizes": sizes,
         "seconds_total": round(time.perf_counter() - started, 1), "results": res.rows,
         "targets": goals}, indent=2) + "\n")
    out = Path(args.out).resolve()
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
