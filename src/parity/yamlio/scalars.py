"""Plain scalars as the reference reader resolves and builds them (YAML 1.2 core
schema, plus timestamps): the fast reader resolves untagged scalars here so that
``0755``, ``yes``, ``1e3`` and dates read as ruamel reads them."""

from __future__ import annotations

import re
from typing import Any

from .inputs import STD

#: YAML 1.2 implicit resolution, as ruamel's VersionedResolver does it (same regular
#: expressions, same order, selected by the first character).
_BOOL12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT12 = re.compile(r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X)
_INT12 = re.compile(r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_MERGE = re.compile(r"^(?:<<)$")
_NULL = re.compile(r"""^(?: ~
        |null|Null|NULL
        | )$""", re.X)
_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)
_VALUE = re.compile(r"^(?:=)$")
_YAML = re.compile(r"^(?:!|&|\*)$")


def _resolvers() -> dict[str, list[tuple[str, re.Pattern]]]:
    table: dict[str, list[tuple[str, re.Pattern]]] = {}
    for tag, rx, first in (("bool", _BOOL12, "tTfF"), ("float", _FLOAT12, "-+0123456789."),
                           ("int", _INT12, "-+0123456789"), ("merge", _MERGE, "<"),
                           ("null", _NULL, ["~", "n", "N", ""]),
                           ("timestamp", _TIMESTAMP, "0123456789"), ("value", _VALUE, "="),
                           ("yaml", _YAML, "!&*")):
        for ch in first:
            table.setdefault(ch, []).append((STD + tag, rx))
    return table


_RESOLVERS = _resolvers()
STR = STD + "str"


def resolve(value: str) -> str:
    """The tag of a plain scalar (YAML 1.2 core schema, plus timestamps)."""
    for tag, rx in _RESOLVERS.get(value[:1], ()):
        if rx.match(value):
            return tag
    return STR


_BOOL_VALUES = {"yes": True, "no": False, "y": True, "n": False, "true": True,
                "false": False, "on": True, "off": False}
_INF = float("inf")
_NAN = float("nan")


def construct(tag: str, value_s: str) -> Any:
    """An int, float or bool from its text, as ruamel's SafeConstructor (YAML 1.2)
    builds it: the same steps, so the same values and the same failures."""
    if tag == STD + "bool":
        return _BOOL_VALUES[value_s.lower()]
    if tag == STD + "int":
        value_s = value_s.replace("_", "")
        sign = +1
        if value_s[0] == "-":
            sign = -1
        if value_s[0] in "+-":
            value_s = value_s[1:]
        if value_s == "0":
            return 0
        if value_s.startswith("0b"):
            return sign * int(value_s[2:], 2)
        if value_s.startswith("0x"):
            return sign * int(value_s[2:], 16)
        if value_s.startswith("0o"):
            return sign * int(value_s[2:], 8)
        return sign * int(value_s)
    value_s = value_s.replace("_", "").lower()
    sign = +1
    if value_s[0] == "-":
        sign = -1
    if value_s[0] in "+-":
        value_s = value_s[1:]
    if value_s == ".inf":
        return sign * _INF
    if value_s == ".nan":
        return _NAN
    return sign * float(value_s)
