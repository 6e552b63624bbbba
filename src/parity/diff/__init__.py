"""The parity diff: align two renders of the stack by identity, list every
difference, and classify each as transport, placement or contract with the policy
rule that decided it (``base/parity-policy.yaml``). A difference no rule covers is
contract: the policy fails closed.

Two levels:

- **model**: the merged models of two selections, service by service, with
  reference templates resolved (so a value that differs only because the same
  ``${host:postgres}`` resolves differently is recognisably transport);
- **rendered**: the rendered documents, aligned by ``apiVersion/kind/namespace/name``
  (kind manifests) or ``services/<name>`` (compose file), for comparing two phases
  of one mode or a render against a saved directory (``--against DIR``).

Secret values are never compared or printed: the model carries only references,
and rendered ``Secret`` data is masked before comparison.

The modules: ``policy`` (rules, accepted differences, waiver dates, ``glob_pattern``,
``classify``), ``difference`` (``Difference``, ``Source``, ``flatten``),
``model_level``, ``rendered`` (with ``read_dir`` for ``--against``), ``hidden``
(differences the shared local overlays hide) and ``report`` (text and JSON).
"""

from .difference import ABSENT, MASK, Difference, Source, flatten
from .hidden import Hidden, hidden_by_local
from .model_level import (Masked, diff_resolved, diff_views, model_diff, model_view, source,
                          with_sources)
from .policy import (CLASSES, NO_RULE, POLICY_FILE, Acceptance, Policy, Rule, classify,
                     glob_pattern, load_policy, parse_until)
from .rendered import RENDER_LIMIT, identities, read_dir, rendered_diff
from .report import format_json, format_text, summary

__all__ = ["ABSENT", "CLASSES", "MASK", "NO_RULE", "POLICY_FILE", "RENDER_LIMIT", "Acceptance",
           "Difference", "Hidden", "Masked", "Policy", "Rule", "Source", "classify",
           "diff_resolved", "diff_views", "flatten", "format_json", "format_text",
           "glob_pattern", "hidden_by_local", "identities", "load_policy", "model_diff",
           "model_view", "parse_until", "read_dir", "rendered_diff", "source", "summary",
           "with_sources"]
