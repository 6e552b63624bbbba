"""Schema validation of the merged tree.

A check compiled from the schema (:func:`compile_check`, closures per keyword)
clears a valid model fast; jsonschema is imported and run only for an invalid
one, to find its errors, which are worded here in parity's terms with file:line.
"""

from __future__ import annotations

import re

from ..errors import InputError, ParityError, did_you_mean
from ..nodes import ListKey, Map, Node, Scalar, Seq, format_path, to_plain
from . import schema
from .locate import locate


def compile_check(sch: dict):
    """A function telling, fast, that an instance is valid against ``sch``: True
    only when jsonschema (draft 2020-12) would report no error. It covers the
    keywords the schemas of :mod:`parity.model.schema` use, a little stricter where
    that is simpler (an integer is an ``int``, not ``1.0``; ``enum`` compares types
    too), so a False means "ask jsonschema", which finds and words the errors."""
    checks = []
    kw = set(sch)
    unknown = kw - {"type", "enum", "pattern", "minLength", "minimum", "maximum",
                    "minItems", "items", "properties", "additionalProperties",
                    "propertyNames", "required", "minProperties", "maxProperties",
                    "anyOf"}
    if unknown:  # a keyword this does not model: never claim valid
        return lambda inst: False
    if "type" in kw:
        types = sch["type"] if isinstance(sch["type"], list) else [sch["type"]]
        pytypes = {"string": (str,), "integer": (int,), "number": (int, float),
                   "boolean": (bool,), "null": (type(None),), "object": (dict,),
                   "array": (list,)}
        allowed = tuple({t for name in types for t in pytypes[name]})
        no_bool = bool not in allowed

        def check_type(inst, allowed=allowed, no_bool=no_bool):
            cls = inst.__class__
            return cls in allowed and not (no_bool and cls is bool)
        checks.append(check_type)
    if "enum" in kw:
        options = [(o.__class__, o) for o in sch["enum"]]
        checks.append(lambda inst, options=options: (inst.__class__, inst) in options)
    if "pattern" in kw:
        search = re.compile(sch["pattern"]).search
        checks.append(lambda inst, search=search: inst.__class__ is not str
                      or search(inst) is not None)
    if "minLength" in kw:
        n = sch["minLength"]
        checks.append(lambda inst, n=n: inst.__class__ is not str or len(inst) >= n)
    for key, ok in (("minimum", lambda v, b: v >= b), ("maximum", lambda v, b: v <= b)):
        if key in kw:
            bound = sch[key]
            checks.append(lambda inst, bound=bound, ok=ok: inst.__class__ not in (int, float)
                          or ok(inst, bound))
    if "minItems" in kw:
        n = sch["minItems"]
        checks.append(lambda inst, n=n: inst.__class__ is not list or len(inst) >= n)
    if "items" in kw:
        item = compile_check(sch["items"])
        checks.append(lambda inst, item=item: inst.__class__ is not list
                      or all(item(v) for v in inst))
    if kw & {"properties", "additionalProperties", "propertyNames", "required",
             "minProperties", "maxProperties"}:
        props = {k: compile_check(v) for k, v in sch.get("properties", {}).items()}
        extra = sch.get("additionalProperties", True)
        extra_check = None if extra is True else (
            (lambda inst: False) if extra is False else compile_check(extra))
        names = compile_check(sch["propertyNames"]) if "propertyNames" in kw else None
        required = tuple(sch.get("required", ()))
        lo, hi = sch.get("minProperties", 0), sch.get("maxProperties")

        def check_object(inst, props=props, extra_check=extra_check, names=names,
                         required=required, lo=lo, hi=hi):
            if inst.__class__ is not dict:
                return True
            if len(inst) < lo or (hi is not None and len(inst) > hi):
                return False
            for r in required:
                if r not in inst:
                    return False
            for k, v in inst.items():
                if names is not None and not names(k):
                    return False
                c = props.get(k)
                if c is None:
                    if extra_check is not None and not extra_check(v):
                        return False
                elif not c(v):
                    return False
            return True
        checks.append(check_object)
    if "anyOf" in kw:
        alts = [compile_check(s) for s in sch["anyOf"]]
        checks.append(lambda inst, alts=alts: any(a(inst) for a in alts))
    if len(checks) == 1:
        return checks[0]
    return lambda inst, checks=tuple(checks): all(c(inst) for c in checks)


def _display_path(tree: Map, parts: list) -> tuple:
    """jsonschema paths use list indexes; show list items by name when they have one."""
    out: list = []
    node: Node | None = tree
    for p in parts:
        if isinstance(node, Seq) and isinstance(p, int) and p < len(node.items):
            item = node.items[p]
            name = item.entries.get("name") if isinstance(item, Map) else None
            out.append(ListKey(str(name.value)) if isinstance(name, Scalar) else p)
            node = item
        else:
            out.append(p)
            node = node.entries.get(p) if isinstance(node, Map) else None
    return tuple(out)


_validator = None


def _schema_validator():
    global _validator
    if _validator is None:
        from jsonschema import Draft202012Validator  # lazy: only an invalid model needs it

        _validator = Draft202012Validator(schema.STACK)
    return _validator


def _schema_message(err) -> tuple[str, str, list]:
    """(message, hint, extra path) for one jsonschema error, in parity's words."""
    v = err.validator
    inst = err.instance
    if v == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = sorted(set(inst) - set(allowed))
        key = extra[0]
        return (f"unknown key '{key}'{did_you_mean(key, allowed)}",
                f"allowed keys here: {', '.join(allowed)}", [key])
    if v == "required":
        missing = err.message.split("'")[1]
        return f"missing required key '{missing}'", "add it", []
    if v == "enum":
        opts = ", ".join(str(o) for o in err.validator_value)
        return (f"'{inst}' is not one of: {opts}{did_you_mean(inst, err.validator_value)}",
                "use one of the listed values", [])
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        got = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "empty (null)"}.get(
            type(inst), type(inst).__name__)
        return f"expected {want}, got {got}", "fix the value's type", []
    if v == "pattern":
        if err.validator_value == schema.DNS_LABEL:
            return (f"'{inst}' is not a DNS-1035 label (lowercase letters, digits and '-', "
                    "starting with a letter, ending with a letter or digit, at most 63 "
                    "characters)",
                    "rename it, e.g. 'my-service'", [])
        if err.validator_value == schema.SECRET_KEY:
            return (f"'{inst}' is not a valid secret key (letters, digits, '-', '_' and '.', "
                    "at most 253 characters, not '.' and not starting with '..'): it names "
                    "a file under .parity/secrets/<secret>/ and a key of a Kubernetes Secret",
                    "rename the key, e.g. 'password'", [])
        if err.validator_value == schema.PORT_NAME:
            return (f"'{inst}' is not a valid port name (at most 15 lowercase letters, digits "
                    "and single '-', with at least one letter)",
                    "use a short lowercase name such as 'http'", [])
        return f"'{inst}' does not match {err.validator_value}", "fix the value", []
    if v == "propertyNames":
        return (f"'{inst}' is not a valid name here", "use a DNS-1035 label (services, "
                "secrets) or an identifier (env keys)", [])
    if v == "anyOf":
        return ("expected a string, number, boolean or {secret: NAME, key: KEY}",
                "quote the value, or give a secret reference", [])
    if v in ("minimum", "maximum"):
        return f"{inst} is out of range ({err.message.split(' is ', 1)[1]})", "fix it", []
    if v in ("minProperties", "maxProperties") and isinstance(inst, dict):
        keys = ", ".join(map(str, inst)) or "none"
        if v == "maxProperties":
            return (f"give at most {err.validator_value} of these keys (found {keys})",
                    "keep one", [])
        return (f"give at least {err.validator_value} key (found {keys})",
                "add one (a secret key takes generate: N or value: TEXT)", [])
    if list(err.absolute_path)[:1] == ["secrets"]:
        # jsonschema's own messages quote the instance, which may hold a secret value
        return f"the value does not satisfy '{v}'", "fix the value", []
    return err.message, "fix the value", []


_fast_check = None


def validate_schema(tree: Map, order: str, plain: dict | None = None) -> list[ParityError]:
    """Schema errors of the merged tree, with file:line. A compiled check
    (:func:`compile_check`) clears a valid model without jsonschema, which is
    imported and run only to find and word the errors of an invalid one."""
    global _fast_check
    if plain is None:
        plain = to_plain(tree)
    if _fast_check is None:
        _fast_check = compile_check(schema.STACK)
    if _fast_check(plain):
        return []
    errors: list[ParityError] = []
    for err in sorted(_schema_validator().iter_errors(plain), key=lambda e: list(
            map(str, e.absolute_path))):
        if "propertyNames" in err.relative_schema_path:
            # jsonschema reports a bad key at its parent; point at the key itself
            path = list(err.absolute_path) + [err.instance]
        else:
            path = list(err.absolute_path)
        message, hint, extra = _schema_message(err)
        full = _display_path(tree, path + extra)
        _, loc = locate(tree, full)
        errors.append(InputError(message, where=str(loc), path=format_path(full), hint=hint,
                                 layers=order))
    return errors
