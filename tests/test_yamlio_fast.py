"""The fast reader (libyaml) against the reference reader (ruamel): the same trees,
lines, overlay operations and messages, or the reference reads the file itself."""

from __future__ import annotations

import math
import random

import pytest

from parity import yamlio
from parity.yamlio.fast import fast_docs
from parity.yamlio.reference import parse_reference
from parity.errors import InputError
from parity.nodes import Map, Seq
from parity.model.overlay import parse_tag


def _sig(node):
    hist = tuple(repr(h) for h in node.hist)
    if isinstance(node, Map):
        return ("map", hist, repr(node.op),
                tuple((k, repr(node.keylocs[k]), _sig(v)) for k, v in node.entries.items()))
    if isinstance(node, Seq):
        return ("seq", hist, repr(node.op), tuple(_sig(v) for v in node.items))
    v = node.value
    shown = "nan" if isinstance(v, float) and math.isnan(v) else repr(v)
    return ("scalar", type(v).__name__, shown, node.text, hist, repr(node.op))


def _read(fn, text, tag_parser):
    try:
        return "ok", _sig(fn(text, "f.yaml", "L", tag_parser=tag_parser))
    except InputError as exc:
        return "error", type(exc).__name__, exc.render()
    except Exception as exc:  # noqa: BLE001 - what the reference raises, the fast must too
        return "raises", type(exc).__name__


def _same(text: str) -> None:
    for tag_parser in (None, parse_tag):
        fast = _read(yamlio.parse_text, text, tag_parser)
        ref = _read(parse_reference, text, tag_parser)
        assert fast == ref, text


SCALARS = ["yes", "no", "on", "off", "y", "True", "tRue", "0755", "0o755", "0x1F", "0b101",
           "-_", "1_000", "1.", ".5", "+.5e3", "1e3", "1E3", ".inf", "-.Inf", ".nan", "nan",
           "~", "null", "nUll", "", "2024-01-31", "2024-01-31T10:00:00Z", "12:30", "<<", "=",
           "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1" * 5000,
           "+1", "-0", "08", "0.", "'quoted'", '"dq\\u00e9"', "'it''s'", "a b", "a #b", "é",
           "|\n  lit\n", ">\n  fold\n  ed\n\n  more\n", ">-\n  a\n   b\n  c\n", "[1, yes, 0o7]",
           "{a: 1, b: on}", "plain\n  multi\n  line", "&a x", "0x_1", "0b2"]
TAGS = ["", "!!str ", "!!int ", "!!null ", "!!timestamp ", "!!binary ", "!replace ",
        "!merge(by=port, expects=2+) ", "!merge(by=port,expects=2+) ", "!insert(before=x) ",
        "!bogus ", "! ", "!<tag:yaml.org,2002:str> ", "!e!x ", "!!set ", "!!map ", "!!seq "]


@pytest.mark.parametrize("tag", TAGS)
def test_scalars_and_tags_read_as_the_reference_reads_them(tag: str) -> None:
    for scalar in SCALARS:
        for template in ("v: {t}{s}\n", "l:\n  - {t}{s}\n", "f: [{t}{s}]\n",
                         "g: {{k: {t}{s}}}\n", "{t}{s}: 1\n"):
            if "\n" in scalar and template.startswith(("f", "g")):
                continue
            _same(template.format(t=tag, s=scalar))


@pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")
@pytest.mark.parametrize("text", [
    # the line of an empty value: ruamel marks the next token, unless a comment
    # follows the ':' and the next token is a key of the same mapping
    "v:\n", "v: \nw: 1\n", "a: \n\n\nb: 1\n", "v: # c\nw: 1\n", "v:\n# c\nw: 1\n",
    "a:\n  v: # c\nw: 1\n", "v: # c\n", "v:   # c\n\n\n", "a:\n  - v: #x\n\n  - w\n",
    "a:\n  v: # c\n\n  # d\n  w: 1\nb: 2\n", "- a: 1\n  v: # c\n- w\n", "v: #c\n? x\n: 1\n",
    "v:\r\n\r\n# x\r\nw: 1\r\n", "? a\n: \nb: 1\n", "? ", "v:", "v: #c",
    # tags: parameters with spaces and commas, in flow context, in comments and strings
    "p: !merge(by=port, expects=2+)\n  - port: 80\n",
    "p: [!merge(by=port,expects=2+) v, 2]\n", "p: {a: !merge(by=port, expects=2+) v}\n",
    "# !merge(by=port, expects=2+) in a comment\np: !merge(by=port, expects=2+)\n  - x\n",
    "p: '!merge(by=port, expects=2+)'\nq: !merge(by=port, expects=2+) [1]\n",
    "p: |\n  !merge(by=port, expects=2+)\nq: !replace 1\n", "p: [!a,b]\n", "p: !a,b\n",
    "p: !merge(by=port, expects=2+)x\n", "p: !merge(by=port\n", "p: !m(a%20b) x\n",
    "p: &a !merge(by=port, expects=2+)\n  - x\nq: *a\n", "p: !m(é) x\n", "p: !m(a#b) x\n",
    "p: !!str(x) y\n", "s: hello!world\nt: \"!x(a, b)\"\n",
    # what the fast reader leaves to the reference
    "t: |\n \n     # x\n      s\n", "t: |#\n  x\n", "v: x\t\n", "%YAML 1.1\n---\nv: yes\n",
    "\ufeffv: 1\n", "v: a\x85b\n", "a: &x [1]\nb: &x [2]\nc: *x\n", "a: *nope\n",
    # structure errors, nesting, aliases
    "a: 1\na: 2\n", "a: [\n", "a: 1\n---\nb: 2\n", "- 1\n", "<<: {a: 1}\n", "!!str a: 1\n",
    "!x a: 1\n", "? [a]\n: 1\n", "a: &r [*r]\n", "a: " + "[" * 70 + "]" * 70 + "\n",
    "a: " + "[" * 2000 + "]" * 2000 + "\n",
    "a: &a [1, 1]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n",
])
def test_structures_read_as_the_reference_reads_them(text: str) -> None:
    _same(text)


def test_the_repository_inputs_are_read_by_libyaml() -> None:
    """Every hand-written input of this repository takes the fast path."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted(root.glob("base/**/*.yaml")) + sorted(root.glob("overlays/**/*.yaml"))
    assert files
    for f in files:
        text = f.read_text()
        assert fast_docs(text) is not None, f
        _same(text)


def test_mutated_inputs_read_as_the_reference_reads_them() -> None:
    """Random edits of this repository's inputs (YAML punctuation, tags, line breaks):
    the two readers agree on every one."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    texts = [f.read_text() for f in sorted(root.glob("base/**/*.yaml"))
             + sorted(root.glob("overlays/**/*.yaml")) if f.stat().st_size < 4000]
    pieces = [":", " ", "-", "?", "[", "]", "{", "}", ",", "#", "&a ", "*a", "!", "|", ">",
              "'", '"', "%", "\t", "\n", "  ", "!merge(by=port, expects=2+) ", "!!str ",
              "yes", "0o7", "<<", "=", "é", "\r", ": ", ":\n", " # c\n", "\n  ", "\n- ",
              "? ", "---\n", "!x(a,b) ", ")", "(", "\r\n"]
    rnd = random.Random(16)
    for _ in range(400):
        text = rnd.choice(texts)
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(text) + 1)
            if rnd.random() < 0.6:
                text = text[:at] + rnd.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rnd.randint(1, 5):]
        _same(text)
