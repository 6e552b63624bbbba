"""Markdown tables for docs/performance.md from a results.json of bench/bench.py.

    python bench/report.py [bench/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FLOOR = "libyaml floor"


def _f(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def synthetic(rows: list[dict]) -> list[str]:
    kind = [r for r in rows if r["section"] == "synthetic" and "--mode kind" in r["case"]]
    out = ["| N | docs (parity / kustomize) | parity wall | parity CPU | parity MiB "
           "| floor CPU | parity ÷ floor | kustomize form | kustomize wall | kustomize CPU "
           "| kustomize MiB | parity ÷ kustomize (CPU) | note |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in kind}):
        at = [r for r in kind if r["n"] == n]
        floor = next(r for r in at if r["reference"] == FLOOR)
        first = True
        for r in at:
            if r["reference"] == FLOOR:
                continue
            form = r["reference"].removeprefix("kustomize, ")
            head = (f"| {n} | {r['parity_docs']} / {r['kustomize_docs']} | "
                    f"{_f(r['parity_s'])} | {_f(r['parity_cpu_s'])} | "
                    f"{_f(r['parity_rss_mib'], 0)} | {_f(floor['reference_cpu_s'])} | "
                    f"**{_f(floor['cpu_ratio'])}** |") if first else "| | | | | | | |"
            bold = "**" if r.get("headline") else ""
            out.append(f"{head} {bold}{form}{bold} | {_f(r['reference_s'])} | "
                       f"{_f(r['reference_cpu_s'])} | {_f(r['reference_rss_mib'], 0)} | "
                       f"{bold}{_f(r['cpu_ratio'])}{bold} | {r['note']} |")
            first = False
    return out


def plain(rows: list[dict], section: str, skip: str = "\0") -> list[str]:
    out = ["| case | wall | CPU | MiB | reference | ref wall | ref CPU | CPU ratio | note |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["section"] == section and skip not in r["case"]:
            out.append(f"| {r['case']} | {_f(r['parity_s'], 3)} | {_f(r['parity_cpu_s'], 3)} | "
                       f"{_f(r['parity_rss_mib'], 0)} | {r['reference'] or ''} | "
                       f"{_f(r['reference_s'], 3)} | {_f(r['reference_cpu_s'], 3)} | "
                       f"{_f(r['cpu_ratio'])} | {r['note']} |")
    return out


def targets(goals: list[dict]) -> list[str]:
    out = ["| target | measured | result |", "|---|---|---|"]
    for t in goals:
        verdict = {True: "met", False: "**NOT met**", None: "not run"}[t["met"]]
        out.append(f"| {t['target']} | {_f(t['measured'], 3)} | {verdict} |")
    return out


def main(argv: list[str]) -> int:
    data = json.loads(Path(argv[0] if argv else Path(__file__).with_name("results.json"))
                      .read_text())
    rows = data["results"]
    for title, lines in (("synthetic: inv render --mode kind --phase 2", synthetic(rows)),
                         ("synthetic: other rows", plain(rows, "synthetic", "--mode kind")),
                         ("scaling", plain(rows, "scaling")), ("emit", plain(rows, "emit")),
                         ("default", plain(rows, "default")),
                         ("startup", plain(rows, "startup")),
                         ("offline", plain(rows, "offline")),
                         ("compose", plain(rows, "compose")), ("kind", plain(rows, "kind")),
                         ("targets", targets(data.get("targets") or []))):
        print(f"### {title}\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
