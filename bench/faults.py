"""Seeded topology faults (``nox -s faults``): how many of them the offline parity lane
catches, and whether its message names the file and line the developer got wrong.

    python bench/faults.py [--corpus DIR] [-k SUBSTRING] [--jobs N] [--json [FILE]] [--verbose]

Each case is ``<corpus>/<category>/<name>.yaml``; the corpus is ``bench/faults/`` unless
``--corpus DIR`` names another (``bench/faults-heldout/`` is a held-out corpus nobody
tunes the checks against):

    description: what a developer did wrong and why compose would not show it
    expect: caught            # or clean: a legitimate difference that must pass
    edit:                     # applied, in order, to a copy of the repository inputs
      - file: overlays/modes/kind.yaml
        action: append        # append | replace (the whole file) | create (a new file)
        text: |
          ...
    where: overlays/modes/kind.yaml   # caught cases: the file the message must name

For every case the repository inputs (base/, overlays/ without overlays/local/, apps/,
checks/) are copied to a temporary directory, the edits applied, and
``parity.offline.run(copy)`` runs with no ``PARITY_*`` variables: exactly what
``nox -s verify`` does. Scoring:

- a ``caught`` case is **caught** when some row failed, **located** when some failed
  row's problem text contains ``<where>:<line>``;
- a ``clean`` case **passes** when every row is ok; a failing clean case is a
  **false positive**;
- an edit that does not apply, or an exception out of ``offline.run`` (printed with
  its traceback), is an **error**: a miss for a caught case, a failure for a clean one.

It measures and reports; it always exits 0 (2 on bad arguments). Cases run in a
process pool; each worker keeps its imports warm and memoises the pure validators
(yamllint and kubernetes-validate over identical text/documents), which does not
change any result, and reuses one copy path so identical renders hit that cache.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = HERE / "faults"
SRC = ROOT / "src"
INPUTS = ("base", "overlays", "images", "apps", "checks")
CATEGORIES = ("browser-urls", "readiness-order", "placement", "release-drift",
              "env-contracts", "secrets-as-config", "dns-and-namespaces", "build-contexts",
              "legit")
ACTIONS = ("append", "replace", "create")
KEYS = {"description", "expect", "edit", "where"}


@dataclass
class Result:
    case: str                 # category/name
    category: str
    expect: str
    description: str
    where: str | None
    result: str               # located | caught | missed | clean | false-positive | error
    failed_checks: list[str] = field(default_factory=list)
    first_problem: str = ""
    located_problem: str = ""
    problems: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


# --------------------------------------------------------------------------- cases

class CaseError(Exception):
    pass


def load_case(path: Path) -> dict:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CaseError("a case is a mapping")
    unknown = set(data) - KEYS
    if unknown:
        raise CaseError(f"unknown keys {sorted(unknown)}")
    for k in ("description", "expect", "edit"):
        if k not in data:
            raise CaseError(f"missing '{k}'")
    if data["expect"] not in ("caught", "clean"):
        raise CaseError(f"expect is caught or clean, not {data['expect']!r}")
    if data["expect"] == "caught" and not data.get("where"):
        raise CaseError("a caught case names 'where'")
    if not isinstance(data["edit"], list) or not data["edit"]:
        raise CaseError("edit is a non-empty list")
    for e in data["edit"]:
        if not isinstance(e, dict) or set(e) != {"file", "action", "text"}:
            raise CaseError("each edit has exactly file, action and text")
        if e["action"] not in ACTIONS:
            raise CaseError(f"action is one of {ACTIONS}, not {e['action']!r}")
        if Path(e["file"]).is_absolute() or ".." in Path(e["file"]).parts:
            raise CaseError(f"edit file {e['file']!r} must be repository-relative")
    return data


def copy_inputs(dst: Path) -> None:
    """The stack inputs, as tests/conftest.py repo_copy does (no overlays/local/)."""
    dst.mkdir(parents=True)
    for name in INPUTS:
        src = ROOT / name
        if src.exists():
            ignore = (lambda d, names: ["local"] if Path(d) == ROOT / "overlays" else []) \
                if name == "overlays" else None
            shutil.copytree(src, dst / name, ignore=ignore)


def apply_edits(root: Path, edits: list[dict]) -> None:
    for e in edits:
        target = root / e["file"]
        text = e["text"]
        if e["action"] == "create":
            if target.exists():
                raise CaseError(f"create: {e['file']} exists (use replace or append)")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        elif e["action"] == "replace":
            if not target.exists():
                raise CaseError(f"replace: {e['file']} does not exist (use create)")
            target.write_text(text, encoding="utf-8")
        else:
            if not target.exists():
                raise CaseError(f"append: {e['file']} does not exist (use create)")
            old = target.read_text(encoding="utf-8")
            if old and not old.endswith("\n"):
                old += "\n"
            target.write_text(old + text, encoding="utf-8")


def show_edits(path: Path) -> None:
    """The case's description and what its edits do to the files (a unified diff)."""
    import difflib

    print(f"=== {path.parent.name}/{path.stem}")
    try:
        case = load_case(path)
    except Exception as exc:  # noqa: BLE001
        print(f"bad case file: {exc}")
        return
    print(f"# {case['description']}\n# expect: {case['expect']}  where: {case.get('where')}")
    texts: dict[str, str | None] = {}
    for e in case["edit"]:
        f = e["file"]
        if f not in texts:
            src = ROOT / f
            skip = Path(f).parts[:2] == ("overlays", "local")
            texts[f] = src.read_text(encoding="utf-8") if src.exists() and not skip else None
        old = texts[f] or ""
        if e["action"] == "append":
            new = (old if not old or old.endswith("\n") else old + "\n") + e["text"]
        else:
            new = e["text"]
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), f"a/{f}", f"b/{f} ({e['action']})"))
        texts[f] = new


# --------------------------------------------------------------------------- worker

_WORKDIR: Path | None = None


def _init_worker(parent: str) -> None:
    """Warm imports; memoise the pure validators the lane calls per document."""
    global _WORKDIR
    sys.path.insert(0, str(SRC))
    from parity import cli, diff, lint, model, offline, rules, validators  # noqa: F401
    from parity import render  # noqa: F401

    yl = functools.lru_cache(maxsize=None)(validators.yamllint_problems)
    validators.yamllint_problems = lambda text: list(yl(text))
    k8s = validators.k8s_problems
    k8s_memo: dict[tuple[str, str], list[str]] = {}

    def k8s_cached(doc: dict, version: str) -> list[str]:
        key = (json.dumps(doc, sort_keys=True, default=str), version)
        if key not in k8s_memo:
            k8s_memo[key] = k8s(doc, version)
        return list(k8s_memo[key])

    validators.k8s_problems = k8s_cached
    _WORKDIR = Path(tempfile.mkdtemp(prefix="worker-", dir=parent))


def run_case(path_str: str) -> Result:
    path = Path(path_str)
    name = f"{path.parent.name}/{path.stem}"
    started = time.monotonic()
    res = Result(name, path.parent.name, "?", "", None, "error")
    try:
        case = load_case(path)
    except Exception as exc:  # noqa: BLE001 - a broken case file is reported, not fatal
        res.error = f"bad case file: {exc}"
        return res
    res.expect, res.description, res.where = case["expect"], case["description"], \
        case.get("where")
    if _WORKDIR is None:
        raise RuntimeError("run_case runs in a worker started by _init_worker")
    root = _WORKDIR / "repo"
    if root.exists():
        shutil.rmtree(root)
    try:
        copy_inputs(root)
        apply_edits(root, case["edit"])
    except CaseError as exc:
        res.error = f"edit does not apply: {exc}"
        return res
    from parity import offline

    try:
        rows, _ = offline.run(root, environ={})
    except Exception:  # noqa: BLE001 - an uncaught traceback is a miss, and shown
        res.error = "uncaught exception in offline.run:\n" + traceback.format_exc()
        res.seconds = time.monotonic() - started
        return res
    finally:
        res.seconds = time.monotonic() - started
    failed = [r for r in rows if not r.ok]
    res.failed_checks = [f"{r.target} {r.check}".strip() for r in failed]
    res.problems = [p for r in failed for p in (r.problems or [f"{r.check}: failed"])]
    res.first_problem = res.problems[0].splitlines()[0] if res.problems else ""
    if case["expect"] == "clean":
        res.result = "false-positive" if failed else "clean"
        return res
    if not failed:
        res.result = "missed"
        return res
    import re

    pat = re.compile(re.escape(case["where"]) + r":\d+")
    hit = next((p for p in res.problems if pat.search(p)), None)
    if hit is not None:
        res.result = "located"
        res.located_problem = next(line for line in hit.splitlines() if pat.search(line))
    else:
        res.result = "caught"
    return res


# --------------------------------------------------------------------------- report

STYLE = {"located": "green", "clean": "green", "caught": "yellow", "missed": "red",
         "false-positive": "red", "error": "red"}
LABEL = {"located": "caught+located", "caught": "caught, not located", "missed": "MISSED",
         "clean": "clean", "false-positive": "FALSE POSITIVE", "error": "ERROR"}


def totals(results: list[Result]) -> dict:
    caught_cases = [r for r in results if r.expect != "clean"]
    clean_cases = [r for r in results if r.expect == "clean"]
    n = len(caught_cases)
    caught = sum(r.result in ("caught", "located") for r in caught_cases)
    located = sum(r.result == "located" for r in caught_cases)
    fp = sum(r.result != "clean" for r in clean_cases)
    pct = (lambda k: round(100.0 * k / n, 1) if n else 0.0)
    per_cat: dict[str, dict] = {}
    for r in results:
        c = per_cat.setdefault(r.category, {"cases": 0, "caught": 0, "located": 0,
                                            "false_positives": 0})
        c["cases"] += 1
        c["caught"] += r.result in ("caught", "located")
        c["located"] += r.result == "located"
        c["false_positives"] += r.expect == "clean" and r.result != "clean"
    return {"fault_cases": n, "caught": caught, "caught_pct": pct(caught),
            "located": located, "located_pct": pct(located),
            "clean_cases": len(clean_cases), "false_positives": fp,
            "errors": sum(r.result == "error" for r in results),
            "by_category": per_cat}


def report(results: list[Result], seconds: float, width: int = 180) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=width, highlight=False)
    t = Table(title="seeded topology faults against the offline parity lane",
              title_justify="left")
    t.add_column("case", no_wrap=True, min_width=44)
    t.add_column("expect", no_wrap=True, min_width=6)
    t.add_column("result", no_wrap=True, min_width=19)
    t.add_column("first problem (the located one when there is one)", no_wrap=True,
                 overflow="ellipsis")
    order = {c: i for i, c in enumerate(CATEGORIES)}
    for r in sorted(results, key=lambda r: (order.get(r.category, 99), r.case)):
        shown = r.located_problem or r.first_problem or \
            (r.error.strip().splitlines() or [""])[-1]
        if len(shown) > 100:
            shown = shown[:99] + "…"
        t.add_row(r.case, r.expect, f"[{STYLE[r.result]}]{LABEL[r.result]}[/]", escape(shown))
    console.print(t)
    for r in results:
        if r.result == "error":
            console.print(f"\n[red]ERROR[/] {r.case}: {escape(r.error)}")
    s = totals(results)
    cats = Table(title="by category", title_justify="left")
    for col in ("category", "cases", "caught", "located", "false positives"):
        cats.add_column(col, justify="left" if col == "category" else "right")
    for cat in sorted(s["by_category"], key=lambda c: order.get(c, 99)):
        c = s["by_category"][cat]
        fault = cat != "legit"
        cats.add_row(cat, str(c["cases"]), str(c["caught"]) if fault else "-",
                     str(c["located"]) if fault else "-", str(c["false_positives"]))
    console.print(cats)
    console.print(
        f"\n{s['fault_cases']} fault cases: caught {s['caught']} ({s['caught_pct']}%), "
        f"located {s['located']} ({s['located_pct']}%); {s['clean_cases']} clean cases: "
        f"{s['false_positives']} false positives; {s['errors']} errors ({seconds:.0f}s)",
        highlight=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=CASES, metavar="DIR",
                    help="the directory of <category>/<name>.yaml cases (default: "
                    "bench/faults)")
    ap.add_argument("-k", dest="filter", default="", help="only cases whose category/name "
                    "contains this")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json", nargs="?", const="", default=None,
                    metavar="FILE", help="write the results as JSON (default FILE: "
                    "<corpus>/results.json)")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="print every problem of every case")
    ap.add_argument("--show-edits", action="store_true",
                    help="print each case's edits as a diff of the files, run nothing")
    args = ap.parse_args(argv)

    corpus = args.corpus.resolve()
    if not corpus.is_dir() and not args.corpus.is_absolute():
        corpus = ROOT / args.corpus        # relative to the repository, not the cwd
    if not corpus.is_dir():
        print(f"--corpus {args.corpus}: no such directory", file=sys.stderr)
        return 2
    if args.json == "":
        args.json = str(corpus / "results.json")
    paths = sorted(p for p in corpus.glob("*/*.yaml") if args.filter in
                   f"{p.parent.name}/{p.stem}")
    if not paths:
        print(f"no cases under {corpus} match {args.filter!r}", file=sys.stderr)
        return 0
    if args.show_edits:
        for p in paths:
            show_edits(p)
        return 0
    started = time.monotonic()
    results: list[Result] = []
    parent = tempfile.mkdtemp(prefix="parity-faults-")
    try:
        results = _run_all(paths, args, parent)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    seconds = time.monotonic() - started
    report(results, seconds)
    if args.json:
        out = {"totals": totals(results), "seconds": round(seconds, 1),
               "cases": [asdict(r) for r in sorted(results, key=lambda r: r.case)]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _run_all(paths: list[Path], args, parent: str) -> list[Result]:
    results: list[Result] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), initializer=_init_worker,
                             initargs=(parent,)) as pool:
        futures = {pool.submit(run_case, str(p)): p for p in paths}
        for i, fut in enumerate(as_completed(futures), 1):
            p = futures[fut]
            try:
                r = fut.result()
            except Exception:  # noqa: BLE001 - a dead worker is an error of that case
                r = Result(f"{p.parent.name}/{p.stem}", p.parent.name, "?", "", None,
                           "error", error=traceback.format_exc())
            results.append(r)
            print(f"[{i}/{len(paths)}] {r.case}: {LABEL[r.result]} ({r.seconds:.1f}s)",
                  file=sys.stderr, flush=True)
            if args.verbose:
                for prob in r.problems:
                    print("    " + prob.replace("\n", "\n    "), file=sys.stderr)
    return results


if __name__ == "__main__":
    sys.exit(main())
