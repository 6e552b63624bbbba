"""parity.yamlio.fastemit writes what yamlio's libyaml path writes, byte for byte, or declines.

The reference is the libyaml path itself (PyYAML's C emitter plus yamlio's sequence
re-indentation), called on the same documents: every case asserts equality with it, and
the random cases are seeded so a failure reproduces."""

from __future__ import annotations

import random

import pytest
import yaml

from parity import yamlio
from parity.yamlio import emit, fastemit


def libyaml_path(docs):
    raw = yaml.dump_all(docs, Dumper=emit._dumper(), default_flow_style=False,
                        sort_keys=False, explicit_start=True, width=4096, allow_unicode=True)
    return emit._indent_sequences(raw)


def writer():
    return fastemit.Writer(emit._libyaml_one)


CASES = {
    "plain words, ints, bools, null": [{"a": "b", "n": 1, "t": True, "f": False, "z": None}],
    "strings the resolver reads as other types": [{"a": "true", "b": "1", "c": "null",
                                                   "d": "2024-01-01", "e": "0x1F", "f": "1.5"}],
    "indicators": [{"a": "x: y", "b": "a #c", "c": "-x", "d": "- x", "e": "x:", "f": "@x",
                    "g": "'q'", "h": "", "i": " lead", "j": "trail "}],
    "image references and URLs stay plain": [{"image": "parity-offline/nginx:1.22-bookworm",
                                              "url": "http://api:8080/x"}],
    "empty collections": [{"a": {}, "b": [], "c": [{}, []]}],
    "nested lists are indented under their key": [{"a": [{"b": [1, 2], "c": {"d": ["x"]}}]}],
    "literal blocks, strip and keep": [{"a": "x\ny", "b": "x\ny\n", "c": ["p\nq"]}],
    "a block indented further inside": [{"a": "  x\ny", "b": "x\n  y\n"}],
    "block on a list item's first key (the re-indentation quirk)":
        [{"l": [{"script": "set -e\nrun\n", "env": ["A", "B"], "m": {"n": ["o"]}},
                {"x": "y", "z": ["w"]}]}],
    "keys of other types": [{2: "a", True: "b", None: "c", "k: v": "d"}],
    "several documents": [{"a": 1}, {"b": [2]}, {"c": {"d": "e"}}],
    "unicode": [{"name": "é", "s": "snowman ☃"}],
}


@pytest.mark.parametrize("docs", CASES.values(), ids=CASES.keys())
def test_writes_the_libyaml_bytes(docs):
    got = fastemit.dump_all_fast(writer(), docs)
    assert got is not None
    assert got == libyaml_path(docs)
    assert yamlio.dump_all(docs) == libyaml_path(docs)


DECLINED = {
    "a dict met twice (libyaml writes an alias)": lambda: (lambda d: [{"a": d, "b": d}])({"x": 1}),
    "a list directly in a list": lambda: [{"a": [[1, 2]]}],
    "a document that is a list": lambda: [["a"]],
    "a tuple": lambda: [{"a": (1, 2)}],
    "a line separator": lambda: [{"a": "x\u2028y"}],
    "a plain scalar that ends like a block header": lambda: [{"a": "x - |"}],
}


@pytest.mark.parametrize("make", DECLINED.values(), ids=DECLINED.keys())
def test_declines_what_it_is_not_sure_of_and_dump_all_still_matches(make):
    docs = make()
    assert fastemit.dump_all_fast(writer(), docs) is None
    assert yamlio.dump_all(docs) == libyaml_path(docs)


ATOMS = ["a", "b c", "x: y", "x:y", "true", "yes", "null", "", " lead", "trail ", "a\nb",
         "a\nb\n", "a\n\nb", "  x\ny", "#x", "a #b", "-", "- a", "-a", "1", "1.5", "@x",
         "${X}", "http://h:80/p", "é", "a\tb", "'q'", '"d"', "[x]", "{x}", "k=v", "*",
         "!t", "|", ">", "?", "---", ":", "a:", "x" * 130, "y " * 70, "x - |", 0, 1, -5,
         10**12, True, False, None, 1.5, "NULL", ".inf", "<<", "a b  c"]
KEYS = ["a", "b", "name", "x y", "true", "1", 1, 80, "a:b", "k: v", "", " s", "é", None,
        True, "-", "q\nz"]


def _gen(rng, depth):
    r = rng.random()
    if depth > 3 or r < 0.45:
        return rng.choice(ATOMS)
    if r < 0.75:
        return {rng.choice(KEYS): _gen(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [x for x in (_gen(rng, depth + 1) for _ in range(rng.randint(0, 4)))
            if not (isinstance(x, list) and x)]


@pytest.mark.parametrize("seed", range(4))
def test_random_documents_match_or_are_declined(seed):
    rng = random.Random(seed)
    w = writer()
    written = 0
    for _ in range(600):
        docs = [{rng.choice(KEYS): _gen(rng, 1) for _ in range(rng.randint(1, 3))}
                for _ in range(rng.randint(1, 2))]
        got = fastemit.dump_all_fast(w, docs)
        if got is not None:
            written += 1
            assert got == libyaml_path(docs), docs
    assert written > 100   # the writer did write, not only decline
