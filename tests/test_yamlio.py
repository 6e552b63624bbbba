"""Reading (line numbers, limits) and writing (stable, yamllint-clean) YAML."""

from __future__ import annotations

import pytest

from parity.errors import InputError
from parity.nodes import Map, Scalar
from parity.yamlio import dump_all, parse_text, write_atomic


def test_every_key_and_value_keeps_its_line() -> None:
    tree = parse_text("a:\n  b: 1\n  c:\n    - x\n", "f.yaml", "base")
    assert str(tree.keylocs["a"]) == "f.yaml:1"
    a = tree.entries["a"]
    assert isinstance(a, Map) and str(a.keylocs["c"]) == "f.yaml:3"
    assert str(a.entries["c"].items[0].loc) == "f.yaml:4"  # type: ignore[attr-defined]


def test_yaml_1_2_scalars_no_norway_problem() -> None:
    tree = parse_text("a: no\nb: 0o17\nc: 1.5\nd: null\ne: '5'\n", "f", "base")
    values = {k: v.value for k, v in tree.entries.items() if isinstance(v, Scalar)}
    assert values == {"a": "no", "b": 15, "c": 1.5, "d": None, "e": "5"}


def test_a_date_stays_the_text_written_and_round_trips_as_a_string() -> None:
    tree = parse_text("built: 2027-01-31\n", "f.yaml", "base")
    assert tree.entries["built"].value == "2027-01-31"
    assert dump_all([{"built": "2027-01-31"}]) == "---\nbuilt: '2027-01-31'\n"


def test_merge_keys_are_refused() -> None:
    with pytest.raises(InputError, match=r"merge keys \('<<'\) are not supported"):
        parse_text("a: &x {b: 1}\nc:\n  <<: *x\n", "f.yaml", "base")


def test_multi_document_refused() -> None:
    with pytest.raises(InputError) as exc:
        parse_text("a: 1\n---\nb: 2\n", "f.yaml", "base")
    assert exc.value.render().startswith("f.yaml:3: more than one YAML document")


def test_dump_is_stable_and_indents_sequences() -> None:
    doc = {"kind": "ConfigMap", "data": {"Corefile": ".:53 {\n    errors\n}\n"},
           "spec": {"containers": [{"name": "a", "args": ["x", "$(Y)"]}]}}
    out = dump_all([doc, doc])
    assert out == dump_all([doc, doc])
    assert "  containers:\n    - name: a\n      args:\n        - x\n" in out
    assert "  Corefile: |\n    .:53 {\n        errors\n    }\n" in out


def test_dump_passes_yamllint_default() -> None:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    doc = {"a": [{"b": [1, 2], "c": "multi\nline\n"}, {"d": {"e": ["f"]}}]}
    problems = list(linter.run(dump_all([doc]), YamlLintConfig("extends: default")))
    assert problems == []


def test_write_atomic_skips_identical_content(tmp_path) -> None:
    target = tmp_path / "out" / "x.yaml"
    assert write_atomic(target, "a: 1\n") is True
    mtime = target.stat().st_mtime_ns
    assert write_atomic(target, "a: 1\n") is False
    assert target.stat().st_mtime_ns == mtime
    assert list(target.parent.iterdir()) == [target]  # no temp files left


def test_folded_scalars_read_as_yaml_defines_them() -> None:
    tree = parse_text("a: >-\n  one two\n  three\nb: |\n  x\n  y\n", "f", "base")
    assert tree.entries["a"].value == "one two three"  # type: ignore[attr-defined]
    assert tree.entries["b"].value == "x\ny\n"  # type: ignore[attr-defined]


def test_dump_writes_what_pyyamls_own_representer_writes() -> None:
    """yamlio's representer shortcut builds the nodes SafeRepresenter builds: the
    same bytes, aliases of a dict met twice included."""
    import yaml

    from parity.yamlio import emit

    class Reference(yaml.CSafeDumper):
        pass

    Reference.add_representer(str, lambda d, s: d.represent_scalar(
        "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))
    shared = {"k": [1, 2]}
    docs = [{"a": shared, "b": shared, "l": [1.5, float("inf"), None, True, False, "x\ny",
                                             "0755", "yes", "", "- x", 3, -7, [], {}]},
            [{"name": "n", "v": {"deep": [[1], ["a: b"]]}}], "top", None, 12]
    want = yaml.dump_all(docs, Dumper=Reference, default_flow_style=False, sort_keys=False,
                         explicit_start=True, width=4096, allow_unicode=True)
    assert dump_all(docs) == emit._indent_sequences(want)
