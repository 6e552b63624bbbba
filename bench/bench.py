"""parity's benchmark (``nox -s bench``): it measures and reports, it never asserts.

    python bench/bench.py [--sizes 50,200,1000,5000] [--runs 3] [--docker auto|yes|no]
                          [--kustomize-budget 120] [--kustomize-limit 300]
                          [--startup-runs 5] [--compose-runs 3] [--kind-runs 1]
                          [--skip SECTIONS] [--out FILE]

Every process row is a fresh process, timed with os.wait4: wall time, CPU time
(user + sys of the process and the children it waited for) and peak RSS. Ratios are
parity / reference per pair of runs (the two run back to back, the order rotating
from run to run, so load on a shared machine lands on both sides); the table shows
their median. CPU ratios are the headline; kustomize is multi-threaded Go, so its
wall time can be below its CPU time.

Sections (one table at the end, and bench/results.json):

1. default   - this repository's stack: in-process warm render of all six
               mode/phase combinations (layers already parsed).
2. synthetic - stacks of N services (bench/synth.py), per N and interleaved:
               ``inv render --mode kind --phase 2`` run as a user runs it (a fresh
               ``inv`` in the stack's root, tasks.py copied there, .parity/build
               removed first so every file is written); the libyaml floor
               (bench/floor.py: C loader over the same inputs, C dumper writing the
               same documents); ``kubectl kustomize`` on the equivalent tree written
               the usual way (one strategic-merge patch file; one JSON 6902 patch).
               The degenerate kustomize form (one patch entry per target) runs once
               per N, labelled, never in a headline. kustomize output of all forms
               is compared byte for byte. A kustomize run over --kustomize-budget s
               is not repeated; one over --kustomize-limit s is stopped (a lower
               bound); a form other than the headline whose fitted growth predicts
               more than the limit is not run at that N (said so). Also ``inv render
               --mode compose`` and ``inv diff`` as processes, their warm in-process
               times, the scaling exponent (log-log least squares of CPU on N) of
               every series.
   emit      - on the 200-service output: parity's emitter (PyYAML + libyaml)
               against ruamel.yaml round-trip, the same documents.
3. startup   - ``inv --list``, ``inv config``, ``inv diff``, ``inv render --all`` on
               this repository against a bare one-task Invoke collection (``inv
               --list`` and its task), interleaved, medians of --startup-runs;
               ``inv status`` (no environment) with Docker.
4. offline   - ``inv verify`` (the work of ``nox -s verify``).
5. compose   - ``inv up --mode compose --phase 1 --profile offline`` against raw
               ``docker compose up -d --wait`` on the same rendered file, and a repeated
               ``inv up`` with nothing changed (time, containers recreated). Needs a
               Docker engine; ``inv down`` between and at the end: it REMOVES a running
               parity compose environment of this checkout (volumes included).
6. kind      - the kind lane, offline profile: building its images (node image, edge,
               services; cold only on a machine that never built them), then per run
               ``inv up --mode kind`` phase 1 and phase 3 from no cluster (images
               built), each followed by a repeated ``up`` with nothing changed (time,
               pods replaced or restarted). Where Docker cannot run ``--privileged``
               it runs through testbin/docker-shim (decision 0010) and says so. It
               REMOVES a parity kind cluster of this checkout (``inv down``).

Sections 3 (status), 4, 5 and 6 run Docker commands; ``--docker no`` skips them.
Set BENCH_SRC=/path/to/other/src to time another copy of the engine in the
synthetic and warm rows (the rows on this repository run this checkout's tasks.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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
FLOOR = "libyaml floor"
HEADLINE = "smp-file"  # the kustomize form the headline ratio uses
BARE_TASKS = 'from invoke import task\n\n\n@task\ndef hello(c):\n    """One task."""\n'


# --------------------------------------------------------------------------- measuring

@dataclass
class Sample:
    wall: float
    cpu: float | None = None       # user + sys seconds
    rss_mib: float | None = None   # peak resident set
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False        # killed at the timeout: wall and cpu are lower bounds


def measure(cmd: list[str], cwd: Path = ROOT, env: dict | None = None,
            timeout: float | None = None, check: bool = True) -> Sample:
    """Run ``cmd`` as a fresh process: wall time, and from os.wait4 its CPU time and
    peak RSS. Past ``timeout`` seconds it is killed and the sample says so."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        s = Sample(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    s.timed_out = bool(timeout and wall >= timeout and s.returncode < 0)
    if check and s.returncode != 0 and not s.timed_out:
        raise RuntimeError(f"{' '.join(cmd)} exited {s.returncode}:\n"
                           f"{(s.stderr or s.stdout)[-2000:]}")
    return s


def in_process(fn, runs: int) -> list[Sample]:
    """Warm: ``fn`` in this process after one untimed call (wall and process CPU)."""
    fn()
    out = []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        out.append(Sample(time.perf_counter() - t, time.process_time() - c))
    return out


def _med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _ratios(a: list[Sample], b: list[Sample], attr: str) -> list[float]:
    """Per-pair ratios a/b: run i of a against run i of b (run back to back)."""
    return [getattr(x, attr) / getattr(y, attr) for x, y in zip(a, b)
            if getattr(x, attr) is not None and getattr(y, attr)]


class Results:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, section: str, case: str, parity: list[Sample] | None,
            reference: list[Sample] | None = None, ref_name: str = "", note: str = "",
            **extra) -> dict:
        parity, reference = parity or [], reference or []
        cpu_r, wall_r = _ratios(parity, reference, "cpu"), _ratios(parity, reference, "wall")
        row = {"section": section, "case": case,
               "parity_s": _round(_med([s.wall for s in parity])),
               "parity_cpu_s": _round(_med([s.cpu for s in parity])),
               "parity_rss_mib": _round(max((s.rss_mib for s in parity if s.rss_mib),
                                            default=None)),
               "parity_runs": [[_round(s.wall), _round(s.cpu)] for s in parity],
               "reference": ref_name or None,
               "reference_s": _round(_med([s.wall for s in reference])),
               "reference_cpu_s": _round(_med([s.cpu for s in reference])),
               "reference_rss_mib": _round(max((s.rss_mib for s in reference if s.rss_mib),
                                               default=None)),
               "reference_runs": [[_round(s.wall), _round(s.cpu)] for s in reference],
               "cpu_ratio": _round(_med(cpu_r)), "cpu_ratios": [_round(x) for x in cpu_r],
               "ratio": _round(_med(wall_r)), "note": note, **extra}
        self.rows.append(row)
        ref = (f"  {ref_name} cpu {_fmt(row['reference_cpu_s'])}s "
               f"cpu ratio {_fmt(row['cpu_ratio'])}" if reference else "")
        print(f"  {section:<9} {case:<44} wall {_fmt(row['parity_s'])}s "
              f"cpu {_fmt(row['parity_cpu_s'])}s{ref}  {note}", flush=True)
        return row


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def interleave(lanes: dict, runs: int) -> dict[str, list[Sample]]:
    """``runs`` rounds of every lane (a name -> callable returning a Sample, or None
    when the lane is done), the order rotated each round."""
    names = list(lanes)
    out: dict[str, list[Sample]] = {k: [] for k in names}
    for r in range(runs):
        for k in names[r % len(names):] + names[:r % len(names)]:
            s = lanes[k]()
            if s is not None:
                out[k].append(s)
    return out


def bytecode(*paths: Path) -> None:
    """Compile to bytecode what ``make venv`` compiles (parity's sources, tasks.py), as
    a user's checkout has it: with PYTHONDONTWRITEBYTECODE=1 nothing else would, and
    every timed process would compile parity from source (docs/performance.md)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                    *map(str, paths)], check=True, stdout=subprocess.DEVNULL)


def child_env() -> dict:
    env = dict(os.environ)
    env["BENCH_SRC"] = SRC
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
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


def exponent(points: list[tuple[int, float]]) -> float | None:
    """k of t = a * N^k, least squares on log t against log N."""
    pts = [(math.log(n), math.log(t)) for n, t in points if t]
    if len(pts) < 2:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


# --------------------------------------------------------------------------- 1: default stack, warm

def render_fn(root: Path, mode: str, phase: int):
    from parity import cli, model
    from parity.render import RenderContext, render

    return lambda: render(model.load(root, cli.selection(mode, phase)).stack, RenderContext())


def diff_fn(root: Path, phase: int):
    from parity import cli

    return lambda: cli.diff(root, "compose", "kind", phase, "model", "text")


def bench_render_default(res: Results, runs: int) -> None:
    print("default: the repository's stack, warm in-process render", flush=True)
    for mode in ("compose", "kind"):
        for phase in (1, 2, 3):
            res.add("default", f"render {mode}:{phase} warm (in-process)",
                    in_process(render_fn(ROOT, mode, phase), runs))


# --------------------------------------------------------------------------- 2: synthetic stacks

class Kustomize:
    """One kustomize form across sizes: budget, limit, prediction, output check."""

    def __init__(self, form: str, budget: float, limit: float) -> None:
        self.form, self.label = form, synth.FORMS[form]
        self.budget, self.limit = budget, limit
        self.sizes: list[tuple[int, float]] = []  # (N, median wall) of full runs
        self.stopped = False

    def lane(self, overlay: Path, outputs: dict, note: list[str]):
        """A lane for interleave(): one ``kubectl kustomize`` per call, None when done."""
        state = {"done": False}

        def run() -> Sample | None:
            if state["done"]:
                return None
            s = measure(KUBECTL + ["kustomize", str(overlay)], cwd=overlay,
                        timeout=self.limit)
            if s.timed_out:
                state["done"] = self.stopped = True
                note.append(f"stopped after {self.limit:.0f} s: wall and CPU are lower "
                            "bounds")
                return s
            outputs.setdefault(self.form, s.stdout)
            s.stdout = ""
            if s.wall > self.budget:
                state["done"] = True
                note.append(f"not repeated: over the {self.budget:.0f} s budget")
            return s
        return run

    def skip_reason(self, n: int) -> str | None:
        if self.stopped:
            return f"not run: stopped at a smaller N after {self.limit:.0f} s"
        k = exponent(self.sizes) if len(self.sizes) >= 2 else None
        if k and self.form != HEADLINE:  # the headline form always runs (or is stopped)
            n0, t0 = self.sizes[-1]
            predicted = t0 * (n / n0) ** k
            if predicted > self.limit:
                return (f"not run: predicted {predicted:.0f} s (N^{k:.2f} from N<={n0}) "
                        f"is over the {self.limit:.0f} s limit")
        return None


def synthetic_inputs(root: Path) -> list[str]:
    """The files ``inv render --mode kind --phase 2`` reads in a synthetic stack."""
    files = sorted(root.glob("base/**/*.yaml"))
    files += [root / "overlays" / f for f in ("modes/kind.yaml", "phases/2.yaml",
                                             "images/default.yaml")]
    return [str(f) for f in files]


def bench_synthetic(res: Results, sizes: list[int], runs: int, budget: float,
                    limit: float, workdir: Path) -> None:
    import yaml

    forms = {f: Kustomize(f, budget, limit) for f in synth.FORMS}
    series: dict[str, list[tuple[int, float]]] = {}
    env = child_env()
    for n in sizes:
        print(f"synthetic: a stack of {n} services", flush=True)
        root = synth.write_parity(workdir / f"parity-{n}", n)
        shutil.copy(ROOT / "tasks.py", root / "tasks.py")
        bytecode(root / "tasks.py")
        overlays = synth.write_kustomize(workdir / f"kustomize-{n}", n)
        build = root / ".parity" / "build"
        out_dir = build / "kind" / "phase2"
        render_cmd = [INV, "render", "--mode", "kind", "--phase", "2"]

        def parity() -> Sample:
            shutil.rmtree(build, ignore_errors=True)
            return measure(render_cmd, cwd=root, env=env)

        parity()  # untimed: the floor needs parity's output documents
        outputs = {f.name: [d for d in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader)]
                   for f in sorted(out_dir.glob("*.yaml"))}
        docs_file = workdir / f"outputs-{n}.pickle"
        docs_file.write_bytes(pickle.dumps(outputs))
        floor_cmd = [PY, str(HERE / "floor.py"), str(docs_file), str(workdir / f"floor-{n}"),
                     *synthetic_inputs(root)]
        pdocs = sum(len(d) for d in outputs.values())
        manifests = (out_dir / "manifests.yaml").read_text()

        kout: dict[str, str] = {}
        knotes: dict[str, list[str]] = {f: [] for f in forms}
        lanes = {"parity": parity, "floor": lambda: measure(floor_cmd, env=env)}
        skipped: dict[str, str] = {}
        for f in ("smp-file", "json6902"):
            reason = forms[f].skip_reason(n)
            if reason:
                skipped[f] = reason
            else:
                lanes[f] = forms[f].lane(overlays[f], kout, knotes[f])
        got = interleave(lanes, runs)
        # the degenerate form: once, after the others, never in a headline
        reason = forms["per-service"].skip_reason(n)
        if reason:
            skipped["per-service"] = reason
        else:
            got["per-service"] = interleave(
                {"per-service": forms["per-service"].lane(overlays["per-service"], kout,
                                                          knotes["per-service"])}, 1
            )["per-service"]

        mismatch = sorted(f for f, text in kout.items() if text != next(iter(kout.values())))
        if mismatch:
            print(f"  !!! KUSTOMIZE OUTPUT MISMATCH at N={n}: {mismatch} differ from "
                  f"{next(iter(kout))}", flush=True)
        kdocs = next(iter(kout.values()), "").count("\nkind: ")
        same = "kustomize outputs byte-identical" if len(kout) > 1 and not mismatch else (
            f"KUSTOMIZE OUTPUTS DIFFER: {mismatch}" if mismatch else "")
        size = dict(n=n, parity_docs=pdocs, kustomize_docs=kdocs)
        case = f"{n} services: inv render --mode kind --phase 2"
        res.add("synthetic", case, got["parity"], got["floor"], FLOOR, **size)
        series.setdefault("parity inv render kind:2", []).append(
            (n, _med([s.cpu for s in got["parity"]])))
        series.setdefault(FLOOR, []).append((n, _med([s.cpu for s in got["floor"]])))
        for f, k in forms.items():
            if f in skipped:
                res.add("synthetic", case, got["parity"], None, k.label, skipped[f], **size)
                continue
            note = "; ".join(knotes[f] + ([same] if f == HEADLINE and same else []))
            res.add("synthetic", case, got["parity"], got[f], k.label, note,
                    headline=f == HEADLINE, **size)
            if not k.stopped:
                wall = _med([s.wall for s in got[f]])
                k.sizes.append((n, wall))
                series.setdefault(k.label, []).append((n, _med([s.cpu for s in got[f]])))

        compose = [INV, "render", "--mode", "compose", "--phase", "2"]
        diff = [INV, "diff", "--from", "compose", "--to", "kind", "--phase", "2"]
        more = interleave({
            "compose": lambda: (shutil.rmtree(build, ignore_errors=True),
                                measure(compose, cwd=root, env=env))[1],
            "diff": lambda: measure(diff, cwd=root, env=env, check=False)}, runs)
        res.add("synthetic", f"{n} services: inv render --mode compose --phase 2",
                more["compose"], n=n)
        res.add("synthetic", f"{n} services: inv diff compose->kind --phase 2",
                more["diff"], n=n, note=f"exit {more['diff'][-1].returncode}")
        res.add("synthetic", f"{n} services: render kind:2 warm (in-process)",
                in_process(render_fn(root, "kind", 2), runs), n=n)
        res.add("synthetic", f"{n} services: diff compose->kind:2 warm (in-process)",
                in_process(diff_fn(root, 2), runs), n=n)
        if n == emit_size(sizes):
            bench_emit(res, manifests, n, runs)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir / f"kustomize-{n}", ignore_errors=True)
        shutil.rmtree(workdir / f"floor-{n}", ignore_errors=True)
    for name, pts in series.items():
        k = exponent(pts)
        res.add("scaling", f"CPU ~ N^k: {name}", None,
                note=f"k = {k:.2f} over N = {[n for n, _ in pts]}" if k else
                "fewer than two sizes", exponent=_round(k), points=pts)


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

    ours = in_process(lambda: dump_all(docs), runs)
    theirs = in_process(ruamel_dump, runs)
    res.add("emit", f"{n} services kind:2 ({len(text) / 1e6:.1f} MB)", ours, theirs,
            "ruamel.yaml round-trip dump", n=n)


# --------------------------------------------------------------------------- 3+4: startup, offline

def bench_startup(res: Results, runs: int, docker: bool, workdir: Path) -> None:
    """inv on this repository against a bare one-task Invoke collection, interleaved."""
    print("startup: inv processes against a bare one-task collection", flush=True)
    bare = workdir / "bare"
    bare.mkdir(exist_ok=True)
    (bare / "tasks.py").write_text(BARE_TASKS)
    bytecode(bare / "tasks.py")
    build = ROOT / ".parity" / "build"

    def render_all() -> Sample:
        shutil.rmtree(build, ignore_errors=True)
        return measure([INV, "render", "--all"])

    lanes = {
        "bare --list": lambda: measure([INV, "--list"], cwd=bare),
        "bare task": lambda: measure([INV, "hello"], cwd=bare),
        "inv --list": lambda: measure([INV, "--list"]),
        "inv config": lambda: measure([INV, "config"]),
        "inv diff": lambda: measure([INV, "diff"], check=False),
        "inv render --all": render_all,
    }
    got = interleave(lanes, runs)
    note = f"median of {runs}, interleaved"
    res.add("startup", "inv --list", got["inv --list"], got["bare --list"],
            "bare collection: inv --list", note)
    for case in ("inv config", "inv diff", "inv render --all"):
        extra = f"; exit {got[case][-1].returncode}" if case == "inv diff" else ""
        res.add("startup", case, got[case], got["bare task"],
                "bare collection: inv hello", note + extra)
    if docker:  # exits 1: services missing
        res.add("startup", "inv status (no environment)",
                [measure([INV, "status"], check=False) for _ in range(runs)],
                note=f"median of {runs}")


def bench_offline(res: Results, runs: int) -> None:
    print("offline: inv verify", flush=True)
    samples = [measure([INV, "verify"], check=False) for _ in range(runs)]
    tail = (samples[-1].stdout.strip().splitlines() or [""])[-1]
    res.add("offline", "inv verify (6 combinations)", samples,
            note=f"exit {samples[-1].returncode}: {tail}")


# --------------------------------------------------------------------------- 5: compose

RECREATED = re.compile(r"(\d+) containers created or recreated")
UP = [INV, "up", "--mode", "compose", "--phase", "1", "--profile", "offline"]
DOWN = [INV, "down", "--mode", "compose", "--phase", "1", "--profile", "offline"]


def _recreated(s: Sample) -> int | None:
    m = RECREATED.search(s.stdout + s.stderr)
    return int(m.group(1)) if m else None


def bench_compose(res: Results, runs: int) -> None:
    print("compose: inv up vs docker compose up -d --wait", flush=True)
    compose_file = ROOT / ".parity" / "build" / "compose" / "phase1" / "docker-compose.yaml"
    raw = ["docker", "compose", "-p", "parity", "-f", str(compose_file), "up", "-d", "--wait"]
    first_up, up, again, raw_up, raw_again = [], [], [], [], []
    try:
        measure(DOWN, timeout=600, check=False)
        # the first up may build the offline images; it is reported on its own
        first_up.append(measure(UP, timeout=3600))
        for _ in range(runs):
            measure(DOWN, timeout=600)
            up.append(measure(UP, timeout=1800))
            again.append(measure(UP, timeout=1800))
            measure(DOWN, timeout=600)
            raw_up.append(measure(raw, timeout=1800))
            raw_again.append(measure(raw, timeout=1800))
    finally:
        measure(DOWN, timeout=600, check=False)
    recreated = [_recreated(s) for s in again]
    res.add("compose", "first inv up (may build images)", first_up)
    res.add("compose", "inv up (fresh containers)", up, raw_up, "docker compose up -d --wait")
    res.add("compose", "inv up again, nothing changed", again, raw_again,
            "docker compose up -d --wait (again)",
            note=f"recreated: {recreated}", recreated=recreated)


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
    build = [measure(images, env=env, timeout=7200)]
    ups: dict[int, list[Sample]] = {1: [], 3: []}
    again: dict[int, list[Sample]] = {1: [], 3: []}
    changed: dict[int, list[int]] = {1: [], 3: []}
    try:
        for _ in range(runs):
            for phase in (1, 3):
                measure(down, env=env, timeout=600)
                up = [INV, "up", "--mode", "kind", "--phase", str(phase)]
                ups[phase].append(measure(up, env=env, timeout=3600))
                before = _pods(phase)
                again[phase].append(measure(up, env=env, timeout=3600))
                after = _pods(phase)
                changed[phase].append(len(set(before) ^ set(after)) + sum(
                    after[u] - before[u] for u in set(before) & set(after)))
    finally:
        measure(down, env=env, timeout=600, check=False)
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

    t = Table(title="parity benchmark (seconds, medians; ratio = median of per-pair "
              "parity/reference)", title_justify="left")
    cols = ("section", "case", "wall", "cpu", "MiB", "reference", "ref wall", "ref cpu",
            "ref MiB", "cpu ratio", "wall ratio", "note")
    for col in cols:
        t.add_column(col, justify="left" if col in ("section", "case", "reference", "note")
                     else "right", no_wrap=col != "note")
    for r in rows:
        t.add_row(r["section"], r["case"], _fmt(r["parity_s"]), _fmt(r["parity_cpu_s"]),
                  _fmt(r["parity_rss_mib"], 0), r["reference"] or "", _fmt(r["reference_s"]),
                  _fmt(r["reference_cpu_s"]), _fmt(r["reference_rss_mib"], 0),
                  _fmt(r["cpu_ratio"], 2), _fmt(r["ratio"], 2), r["note"])
    Console(width=260).print(t)


def targets(rows: list[dict], sizes: list[int]) -> list[dict]:
    """Issue #16's targets (and the earlier ones), judged from this run: met, NOT met,
    or not run. Reported, never asserted."""
    out: list[dict] = []

    def judge(target: str, row: dict | None, key: str, limit: float, extra=None) -> None:
        value = row.get(key) if row else None
        met = None if value is None else value <= limit and (extra is None or extra(row))
        out.append({"target": target, "measured": value, "met": met})

    def find(section: str, case: str, ref: str | None = None) -> dict | None:
        return next((r for r in rows if r["section"] == section and r["case"] == case
                     and (ref is None or r["reference"] == ref)), None)

    kind = "{} services: inv render --mode kind --phase 2"
    judge("inv render --mode kind, 1000 services: <= 2.0 s CPU",
          find("synthetic", kind.format(1000), FLOOR), "parity_cpu_s", 2.0)
    for n in sizes:
        judge(f"inv render --mode kind, {n} services: <= 2.5x the libyaml floor (CPU)",
              find("synthetic", kind.format(n), FLOOR), "cpu_ratio", 2.5)
    judge("scaling exponent of inv render --mode kind CPU <= 1.1",
          find("scaling", "CPU ~ N^k: parity inv render kind:2"), "exponent", 1.1)
    judge(f"inv render --mode kind, 1000 services: no slower than "
          f"{synth.FORMS[HEADLINE]} (CPU)",
          find("synthetic", kind.format(1000), synth.FORMS[HEADLINE]), "cpu_ratio", 1.0)
    judge("inv --list <= 1.1x a bare one-task collection (CPU)",
          find("startup", "inv --list"), "cpu_ratio", 1.1)
    for case in ("inv config", "inv diff", "inv render --all"):
        judge(f"{case} <= 1.6x a bare one-task collection's task (CPU)",
              find("startup", case), "cpu_ratio", 1.6)
    judge("no-op inv up (compose): <= 1.5 s, 0 containers recreated",
          find("compose", "inv up again, nothing changed"), "parity_s", 1.5,
          lambda r: bool(r.get("recreated")) and all(x == 0 for x in r["recreated"]))
    judge("offline verify < 5 s", find("offline", "inv verify (6 combinations)"),
          "parity_s", 5)
    for phase in (1, 3):
        judge(f"no-op inv up --mode kind phase {phase}: < 15 s, no pod restarted",
              find("kind", f"inv up --mode kind --phase {phase} again, nothing changed"),
              "parity_s", 15, lambda r: bool(r.get("changed")) and not any(r["changed"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="50,200,1000", help="synthetic stack sizes")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--docker", choices=("auto", "yes", "no"), default="auto",
                    help="run the Docker sections (auto: where an engine answers)")
    ap.add_argument("--kustomize-budget", type=float, default=120.0,
                    help="after a kustomize run longer than this, do not repeat it")
    ap.add_argument("--kustomize-limit", type=float, default=300.0,
                    help="stop a kustomize run after this many seconds (a lower bound); "
                    "a form predicted to take longer is not run")
    ap.add_argument("--startup-runs", type=int, default=5)
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

    out = Path(args.out).resolve()

    def save() -> list[dict]:
        """Write results.json (after every section, so a stopped run keeps its rows)."""
        goals = targets(res.rows, sizes)
        out.write_text(json.dumps(
            {"machine": info, "docker": docker, "runs": args.runs, "sizes": sizes,
             "argv": sys.argv[1:] if argv is None else argv,
             "seconds_total": round(time.perf_counter() - started, 1), "results": res.rows,
             "targets": goals}, indent=2) + "\n")
        return goals

    def section(name: str, fn, *a) -> None:
        """Run one section; a failure is reported as a row, the others still run."""
        try:
            fn(res, *a)
        except Exception as exc:  # a benchmark reports, it does not stop
            res.add(name, "error", None, note=f"{type(exc).__name__}: {exc}"[:300])
        save()

    bytecode(Path(SRC), ROOT / "tasks.py")
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as tmp:
        if "default" not in skip:
            section("default", bench_render_default, args.runs)
        if "startup" not in skip:
            section("startup", bench_startup, args.startup_runs, docker, Path(tmp))
        if "synthetic" not in skip:
            section("synthetic", bench_synthetic, sizes, args.runs, args.kustomize_budget,
                    args.kustomize_limit, Path(tmp))
    if docker and "offline" not in skip:
        section("offline", bench_offline, args.runs)
    if docker and "compose" not in skip:
        section("compose", bench_compose, args.compose_runs)
    if docker and "kind" not in skip:
        section("kind", bench_kind, args.kind_runs)
    if not docker:
        print("no Docker engine (or --docker no): inv status, verify, the "
              "compose and the kind sections were not run", flush=True)
    goals = save()
    table(res.rows)
    for t in goals:
        verdict = {True: "met", False: "NOT met", None: "not run"}[t["met"]]
        print(f"target {t['target']}: {verdict} (measured {t['measured']})")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
