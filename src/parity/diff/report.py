"""The diff as text (grouped by class, with sources and rules) and as JSON."""

from __future__ import annotations

import json

from .difference import Difference, show
from .hidden import Hidden
from .policy import CLASSES, Acceptance


def summary(diffs: list[Difference]) -> dict[str, int]:
    """Counts by class; ``contract`` counts only what fails (not accepted)."""
    out = {c: sum(1 for d in diffs if d.cls == c and d.accepted is None) for c in CLASSES}
    out["accepted"] = sum(1 for d in diffs if d.accepted is not None)
    return out


def format_text(diffs: list[Difference], title: str,
                unused: list[Acceptance] = (), labels: tuple[str, str] = ("from", "to"),
                hidden: list[Hidden] = ()) -> str:
    counts = summary(diffs)
    accepted = f"{counts['accepted']} accepted, " if counts["accepted"] else ""
    lines = [f"{title}: {len(diffs)} differences "
             f"({counts['contract']} contract, {accepted}{counts['transport']} transport, "
             f"{counts['placement']} placement)"]
    groups = (("CONTRACT (not allowed between modes)", lambda d: d.failing),
              ("ACCEPTED CONTRACT (allowed until the date shown)",
               lambda d: d.accepted is not None),
              ("TRANSPORT", lambda d: d.cls == "transport"),
              ("PLACEMENT", lambda d: d.cls == "placement"))
    for heading, member in groups:
        group = [d for d in diffs if member(d)]
        if not group:
            continue
        lines.append(f"\n{heading}")
        for d in group:
            lines.append(f"  {d.path}")
            lines.append(f"      {show(d.from_value)}  ->  {show(d.to_value)}")
            if d.from_source is not None and d.to_source is not None:
                lines.append(f"      {labels[0]}: {d.from_source}   {labels[1]}: {d.to_source}")
            lines.append(f"      rule: {d.rule} — {d.reason}")
            if d.accepted is not None:
                a = d.accepted
                lines.append(f"      accepted: {a.id} until {a.until} — {a.reason}")
            if d.expired is not None:
                a = d.expired
                lines.append(f"      accepted: {a.id} expired on {a.until} ({a.where}): "
                             "fix the drift, or renew the date in review")
    if unused:
        lines.append("\nACCEPTED, BUT MATCHED NOTHING HERE (remove them once the drift is "
                     "fixed)")
        lines += [f"  {a.id}: {a.path} ({a.where})" for a in unused]
    if hidden:
        lines.append("")
        lines += [h.message() for h in hidden]
        lines.append("  (overlays/local/*.yaml applies to every mode; a change for one mode "
                     "goes in overlays/local/<mode>/. The exit code ignores these warnings.)")
    return "\n".join(lines)


def format_json(diffs: list[Difference], title: str,
                unused: list[Acceptance] = (), hidden: list[Hidden] = ()) -> str:
    counts = summary(diffs)
    return json.dumps({"comparison": title, "contract_differences": counts["contract"],
                       "counts": counts, "differences": [d.as_json() for d in diffs],
                       "unused_acceptances": [a.id for a in unused],
                       "hidden_by_local": [h.as_json() for h in hidden]},
                      indent=2, default=str)
