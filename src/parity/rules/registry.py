"""The rule list in its one order, waivers, ``check`` and ``report``.

``RULES`` is explicit: the order rules run in decides the order of equal-line
violations, the rule goldens and docs/errors.md (tests/gen_rules_doc.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from ..diff import parse_until
from ..errors import InputError, did_you_mean
from ..model import enabled_tree, locate
from ..nodes import Map, Scalar, Seq, format_path, to_plain
from ..yamlio import load_file
from . import (addresses, builds, credentials, data, env, identity, images, readiness,
               resources, sources)
from .base import Ctx, RuleDef, Violation, Waiver


POLICY_FILE = Path("base") / "parity-policy.yaml"

#: every rule, in the order they run, are reported (on one line) and documented
RULES: list[RuleDef] = [
    addresses.literal_browser_url,
    addresses.literal_service_address,
    images.floating_image_tag,
    readiness.undeclared_dependency,
    credentials.plain_credential,
    env.undefined_variable,
    addresses.listens_on_loopback,
    addresses.browser_domain,
    addresses.internal_dns,
    identity.origin_shape,
    env.settings_disagree,
    images.image_drift,
    addresses.internal_for_browser,
    addresses.scheme_mismatch,
    env.env_shape,
    identity.identity_reference,
    credentials.shared_credential,
    readiness.probe_protocol,
    builds.build_context_state,
    builds.build_source_missing,
    images.image_not_buildable,
    env.env_key_typo,
    env.env_contradicts_args,
    data.stateful_replicas,
    readiness.dependency_scaled_to_zero,
    resources.resource_units,
    resources.limits_below_requests,
    resources.requests_exceed_node,
    data.data_outside_volume,
    data.unknown_storage_class,
    credentials.ca_bundle_path,
    addresses.reference_to_another_service,
    identity.cookie_domain,
    identity.client_without_secret,
    data.data_env_outside_volume,
    sources.env_key_unread,
    readiness.readiness_on_liveness,
    images.build_under_upstream_name,
    builds.build_arg_not_declared,
    builds.image_port_not_declared,
    readiness.readiness_port_unused,
    identity.redirect_on_another_host,
    images.image_profile_scope,
    addresses.ops_port_as_address,
    readiness.tcp_readiness_on_http,
    readiness.probe_port_undeclared,
]


def load_waivers(root: Path, today: date | None = None) -> list[Waiver]:
    """``waivers:`` of the policy file (bad entries are InputError, exit 2)."""
    path = root / POLICY_FILE
    if not path.exists():
        return []
    tree = load_file(path, str(POLICY_FILE), "policy")
    node = tree.entries.get("waivers")
    if node is None:
        return []
    if not isinstance(node, Seq):
        raise InputError("'waivers' must be a list", where=str(node.loc), path="waivers")
    today = today or date.today()
    ids = {r.id: r for r in RULES}
    out: list[Waiver] = []
    for i, item in enumerate(node.items):
        base, where = f"waivers[{i}]", str(item.loc)
        if not isinstance(item, Map):
            raise InputError("each waiver is a mapping", where=where, path=base)
        data: dict[str, Any] = {}
        for k, v in item.entries.items():
            if k not in ("rule", "path", "reason", "until"):
                raise InputError(f"unknown key '{k}'"
                                 f"{did_you_mean(k, ('rule', 'path', 'reason', 'until'))}",
                                 where=str(item.keylocs[k]), path=base,
                                 hint="a waiver has rule, path, reason and until")
            data[k] = v.value if isinstance(v, Scalar) else None
        for k in ("rule", "path", "reason", "until"):
            if not data.get(k):
                raise InputError(f"missing required key '{k}'", where=where, path=base,
                                 hint="a waiver needs the rule id, the path it covers, the "
                                      "reason and the last day it holds (until: YYYY-MM-DD)")
        if data["rule"] not in ids:
            raise InputError(f"unknown rule '{data['rule']}'{did_you_mean(data['rule'], ids)}",
                             where=str(item.entries["rule"].loc), path=f"{base}.rule",
                             hint="the rule ids are in docs/errors.md#model-rules")
        if not ids[data["rule"]].waivable:
            raise InputError(f"rule '{data['rule']}' cannot be waived",
                             where=str(item.entries["rule"].loc), path=f"{base}.rule",
                             hint="fix the model instead")
        until = parse_until(data["until"], item, base)
        out.append(Waiver(data["rule"], str(data["path"]), str(data["reason"]), until,
                          where, expired=until < today))
    return out


def check(resolved, root: Path, waivers: list[Waiver] | None = None) -> list[Violation]:
    """Every rule for the selection of ``resolved``, waivers applied; stable order."""
    tree = enabled_tree(resolved)
    data = to_plain(tree)
    stack = resolved.stack
    ctx = Ctx(root, tree, data, stack, data.get("services") or {}, list(resolved.layers))
    waivers = load_waivers(root) if waivers is None else waivers
    out: list[Violation] = []
    for r in RULES:
        if stack.mode not in r.modes:
            continue
        for path, message, fix in r.fn(ctx):
            node, loc = locate(resolved.tree, path)
            if node is not None and node.loc.layer != "default":
                loc = node.loc  # the layer that last set it (a list replaced in an overlay)
            up = path
            while loc.layer == "default" and up:
                up = up[:-1]  # filled by a default: point at the nearest written parent
                parent, loc = locate(resolved.tree, up)
                if parent is not None and parent.loc.layer != "default":
                    loc = parent.loc
            v = Violation(r.id, format_path(path), str(loc), message, fix)
            w = next((w for w in waivers if w.matches(v)), None) if r.waivable else None
            out.append(replace(v, waiver=w) if w else v)
    return sorted(out, key=lambda v: (v.where.split(":")[0], _line(v.where), v.rule))


def _line(where: str) -> int:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def report(violations: list[Violation], title: str) -> str:
    failing = [v for v in violations if v.failing]
    waived = [v for v in violations if not v.failing]
    lines = [title]
    for v in failing:
        lines.append(v.render())
    for v in waived:
        lines.append("WAIVED " + v.render())
    lines.append(f"{len(failing)} rule violations, {len(waived)} waived")
    return "\n".join(lines)
