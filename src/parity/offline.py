"""The offline parity lane (``nox -s verify``, ``inv verify``).

For every mode and phase: render into ``.parity/build/``, then check the output with
the external validators (kubernetes-validate strict for 1.31 and the newest
schemas, Gateway API CRD schemas, kind's v1alpha4 fields, ``docker compose config``,
yamllint), the cross-reference lint, and finally the compose-vs-kind parity diff of
each phase. Every check runs; the lane prints one table and fails closed.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from . import diff, model, rules, secrets, validators
from .errors import ParityError
from .modes import MODES, mode_record, selection
from .render import RenderContext, render, write


@dataclass
class Row:
    target: str
    check: str
    ok: bool
    detail: str = ""
    problems: list[str] = field(default_factory=list)


def kind_checks(files: dict[str, str]) -> list[Row]:
    """The external validators of a kind render (the kind :class:`parity.modes.Mode`'s
    ``offline_checks``)."""
    import yaml  # lazy: PyYAML's C loader; only the kind validators parse the render

    v = validators
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(files["manifests.yaml"], Loader=loader) if d]
    docs += [d for d in yaml.load_all(files.get("edge.yaml", ""), Loader=loader) if d]
    rows = []
    for version in (v.K8S_OLDEST, v.newest_k8s()):
        problems = []
        count = 0
        for d in docs:
            if d.get("kind") in v.GATEWAY_KINDS:
                continue
            count += 1
            problems += [f"{d['kind']}/{d['metadata']['name']}: {p}"
                         for p in v.k8s_problems(d, version)]
        rows.append(Row("", f"kubernetes-validate --strict {version}", not problems,
                        f"{count} objects", problems))
    problems = []
    gw = [d for d in docs if d.get("kind") in v.GATEWAY_KINDS]
    for d in gw:
        problems += [f"{d['kind']}/{d['metadata']['name']}: {p}" for p in v.gateway_validate(d)]
    rows.append(Row("", f"Gateway API {v.GATEWAY_API_VERSION} CRD schemas", not problems,
                    f"{len(gw)} objects", problems))
    config = yaml.safe_load(files["kind-config.yaml"])
    problems = v.kind_config_problems(config)
    rows.append(Row("", "kind v1alpha4 cluster config", not problems, "", problems))
    return rows


def compose_checks(stack, root: Path, files: dict[str, str], out: Path) -> list[Row]:
    """The external validators of a compose render (the compose
    :class:`parity.modes.Mode`'s ``offline_checks``): ``docker compose config`` of the
    written render, with its secrets materialized."""
    secrets.ensure(stack, root / ".parity")
    secrets.write_env_files(stack, root / ".parity")
    try:
        problems = validators.compose_problems(out / "docker-compose.yaml")
    except ParityError as exc:
        problems = [exc.render()]
    return [Row("", "docker compose config --quiet", not problems, "", problems)]


def profiles(root: Path, chosen: str) -> list[str]:
    """The image profile in use first, then every other one overlays/images/ holds."""
    names = sorted(p.stem for p in (root / "overlays" / "images").glob("*.yaml")
                   if p.is_file())
    return [chosen] + [n for n in names if n != chosen]


def run(root: Path, environ: dict | None = None) -> tuple[list[Row], float]:
    started = time.monotonic()
    rows: list[Row] = []
    try:
        waivers = rules.load_waivers(root)
    except ParityError as exc:
        return [Row("policy", "waivers", False, "", [exc.render()])], \
            time.monotonic() - started
    chosen = selection("compose", 1, environ=environ).effective_profile()
    for profile, mode, phase in [(p, m, n) for p in profiles(root, chosen)
                                 for m in MODES for n in (1, 2, 3)]:
        # the profile in use is the plain target; every other image profile is
        # checked too (a fault in overlays/images/offline.yaml is a fault of
        # everyone who runs PROFILE=offline), named with its profile
        target = f"{mode}:{phase}" + ("" if profile == chosen else f":{profile}")
        sel = selection(mode, phase, profile, environ=environ)
        try:
            resolved = model.load(root, sel)
            stack = resolved.stack
            out = root / ".parity" / "validate" / profile / mode / f"phase{phase}"
            files = render(stack, RenderContext.for_output(root, out))
            write(files, out)
            again = render(stack, RenderContext.for_output(root, out))
        except ParityError as exc:
            rows.append(Row(target, "render", False, "", [exc.render()]))
            continue
        rows.append(Row(target, "render (byte-identical twice)", again == files,
                        f"{len(files)} files"))
        problems = [f"{name}: {p}" for name, text in sorted(files.items())
                    if name.endswith(".yaml") for p in validators.yamllint_problems(text)]
        rows.append(Row(target, "yamllint (default rules)", not problems, "", problems))
        record = mode_record(mode)
        for r in record.offline_checks(stack, root, files, out):
            r.target = target
            rows.append(r)
        findings = record.lint_render(files, stack)
        rows.append(Row(target, "cross-reference lint", not findings, "",
                        [f"{f.obj} {f.field}: {f.message}" for f in findings]))
        violations = rules.check(resolved, root, waivers)
        failing = [v for v in violations if v.failing]
        waived = len(violations) - len(failing)
        rows.append(Row(target, "model rules", not failing,
                        f"{len([r for r in rules.RULES if mode in r.modes])} rules"
                        + (f", {waived} waived" if waived else ""),
                        [v.render() for v in failing]))
    policy = diff.load_policy(root)
    for profile, phase in [(p, n) for p in profiles(root, chosen) for n in (1, 2, 3)]:
        target = f"compose~kind:{phase}" + ("" if profile == chosen else f":{profile}")
        try:
            diffs = diff.model_diff(root, selection("compose", phase, profile, environ=environ),
                                    selection("kind", phase, profile, environ=environ),
                                    policy.rules)
        except ParityError as exc:
            rows.append(Row(target, "parity diff", False, "", [exc.render()]))
            continue
        diffs, _ = policy.accept(diffs, datetime.date.today())
        counts = diff.summary(diffs)
        contract = [f"{d.path}: {d.from_value} -> {d.to_value} (rule {d.rule})"
                    + (f"; acceptance {d.expired.id} expired on {d.expired.until}"
                       if d.expired else "")
                    + (f"\n    compose: {d.from_source}   kind: {d.to_source}"
                       if d.from_source is not None and d.to_source is not None else "")
                    for d in diffs if d.failing]
        accepted = f", {counts['accepted']} accepted" if counts["accepted"] else ""
        rows.append(Row(target, "parity diff (no contract drift)",
                        not contract, f"{counts['transport']} transport, "
                        f"{counts['placement']} placement{accepted}", contract))
    return rows, time.monotonic() - started


def table(rows: list[Row], seconds: float) -> str:
    # lazy: rich costs 30 ms; only the table needs it
    from rich.console import Console
    from rich.table import Table

    t = Table(title="parity offline validation", title_justify="left")
    for col in ("target", "check", "result", "detail"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.target, r.check, "ok" if r.ok else "FAIL",
                  r.detail if r.ok else f"{len(r.problems)} problems")
    buf = StringIO()
    Console(file=buf, width=120, color_system=None).print(t)
    out = buf.getvalue().rstrip()
    failed = [r for r in rows if not r.ok]
    for r in failed:
        out += f"\n\nFAIL {r.target} {r.check}:\n" + "\n".join(f"  {p}" for p in r.problems[:20])
    out += (f"\n\n{len(rows) - len(failed)} passed, {len(failed)} failed "
            f"({seconds:.1f}s)")
    return out
