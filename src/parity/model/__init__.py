"""The stack model: layers, defaults, validation (schema and semantic rules, every
problem collected with file:line), and the typed view the renderers read.

``load(root, selection)`` is the entry point: layers -> merged tree -> defaults ->
validation -> :class:`Stack` for the chosen mode and phase.

    layers.py     the layer order (:func:`plan_layers`) and what the user chose
    scan.py       reading the layer directories strictly
    merge.py      reading the layers and merging them into one tree (uses overlay/)
    overlay/      the ytt-style overlay engine
    schema.py     the JSON Schema of the model, its defaults, its collections
    defaults.py   defaults filled in; numbers kept as written where text is expected
    check.py      the schema check (compiled fast path, jsonschema's errors worded)
    validate.py   the semantic rules, one function each, in a fixed order
    references.py secret references and reference templates checked
    formats.py    paths, DNS names, image references, build contexts checked
    templates.py  reference templates (``${service:NAME.PORT}``) parsed and resolved
    types.py      the typed view: Stack, Service, ... and Resolved
    build.py      load(): the steps above, then the typed Stack
    locate.py     provenance: the file:line of a model path
    explain.py    views for people: explain, masked values
"""

from __future__ import annotations

from .build import load
from .explain import (MASK, enabled_tree, explain, is_secret_path, mask_secret_values,
                      masked_plain)
from .defaults import apply_defaults, as_written
from .formats import image_ref_problem, readiness_path_problem, route_path_problem
from .layers import ENV_VARS, Layer, Selection, describe, environ_subset, plan_layers
from .locate import DEFAULT_LOC, locate, parse_path
from .merge import load_layer, merged_tree
from .types import (Build, File, Origins, Port, Readiness, Resolved, Route, RuntimeImage,
                    Secret, SecretFile, SecretKey, SecretRef, Service, Stack, Storage, waves)

__all__ = [
    # loading
    "load", "Resolved", "Selection", "Layer", "plan_layers", "describe", "ENV_VARS",
    "environ_subset", "load_layer", "merged_tree", "apply_defaults", "as_written",
    # the typed view
    "Stack", "Service", "Port", "SecretRef", "Readiness", "Route", "Storage",
    "SecretFile", "File", "Build", "RuntimeImage", "SecretKey", "Secret", "Origins",
    "waves",
    # provenance and views
    "DEFAULT_LOC", "locate", "parse_path", "explain", "enabled_tree", "masked_plain",
    "mask_secret_values", "is_secret_path", "MASK",
    # value checks
    "image_ref_problem", "route_path_problem", "readiness_path_problem",
]
