"""ytt-style overlays: operations (ops), matching (match), application (apply)."""

from .apply import Context, Policy, apply, materialize
from .ops import MERGE, Op, parse_tag

__all__ = ["Context", "Policy", "apply", "materialize", "MERGE", "Op", "parse_tag"]
