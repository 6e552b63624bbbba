"""Model rules: mistakes both modes make the same way, so no diff between them can
show it, and what a cluster needs that compose never asks for.

The parity diff catches a value that differs between compose and kind. It cannot
catch a literal browser URL written into an env value, a floating image tag or a
service that reaches another without waiting for it: both modes carry the same
mistake. Each rule here is one small function over the merged model of one
selection (mode + phase), with an id, a message naming ``file:line`` (from the
provenance of the value) and the fix. ``inv lint`` and ``nox -s verify`` run them;
docs/errors.md lists every rule.

A team may waive a waivable rule for a path, with a reason and an end date, under
``waivers:`` in ``base/parity-policy.yaml``; a waiver is shown on every run and
fails again once it expires (as accepted differences do).

Rules with ``modes=("kind",)`` are cluster rules: what the kind lane needs and
compose would silently tolerate.

Floor plan:

- base.py: ``Violation``, ``Waiver``, the rule record ``RuleDef`` and its ``@rule``
  decorator, the context ``Ctx`` a rule reads;
- registry.py: ``RULES`` (the one explicit order), ``load_waivers``, ``check``,
  ``report``;
- the rules by theme: addresses.py, identity.py, credentials.py, env.py,
  readiness.py, data.py, resources.py, images.py, builds.py, and sources.py
  (the Dockerfile reader and the copied sources the rules read).

A new rule is a function under ``@rule`` in the module of its theme, listed in
``registry.RULES``, with a failing and a passing case in tests/golden/rules/.
"""

from .base import RuleDef, Violation, Waiver
from .readiness import closure
from .registry import POLICY_FILE, RULES, check, load_waivers, report

__all__ = ["POLICY_FILE", "RULES", "RuleDef", "Violation", "Waiver", "check", "closure",
           "load_waivers", "report"]
