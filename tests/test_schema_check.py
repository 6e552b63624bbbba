"""check.compile_check clears a model only when jsonschema finds no error in it."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from parity import cli, model
from parity.model import check, schema
from parity.nodes import to_plain

ROOT = Path(__file__).resolve().parents[1]
CHECK = check.compile_check(schema.STACK)
VALIDATOR = Draft202012Validator(schema.STACK)


def _models() -> list[dict]:
    out = []
    for mode in ("compose", "kind"):
        for phase in (1, 2, 3):
            out.append(to_plain(model.load(ROOT, cli.selection(mode, phase)).tree))
    return out


def test_the_repository_models_are_cleared_without_jsonschema() -> None:
    for plain in _models():
        assert CHECK(plain)
        assert not list(VALIDATOR.iter_errors(plain))


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


VALUES = ["x", "", "-bad", "Bad", "/p", "12", "1Gi", "1.5", 0, 1, 8, 70000, -1, 1.0, 1.5,
          True, False, None, {}, [], {"zzz": 1}, ["x"], [1], {"secret": "db", "key": "k"},
          {"name": "http", "port": 80}, "S256", "public", float("inf")]


@pytest.mark.parametrize("seed", range(4))
def test_mutated_models_are_cleared_only_when_jsonschema_finds_nothing(seed: int) -> None:
    rnd = random.Random(seed)
    base = _models()
    cleared = refused = 0
    for _ in range(400):
        plain = copy.deepcopy(rnd.choice(base))
        for _ in range(rnd.randint(1, 2)):
            path = rnd.choice(list(_paths(plain))[1:])
            parent = plain
            for p in path[:-1]:
                parent = parent[p]
            r = rnd.random()
            if r < 0.6:
                parent[path[-1]] = copy.deepcopy(rnd.choice(VALUES))
            elif r < 0.8 and isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[rnd.choice(["zzz", "Bad Key", "ok", "1", "a--b", "x" * 70])] = \
                    copy.deepcopy(rnd.choice(VALUES))
        if CHECK(plain):
            cleared += 1
            assert not list(VALIDATOR.iter_errors(plain)), plain
        else:
            refused += 1
    assert cleared and refused
