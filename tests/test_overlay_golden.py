"""Every overlay operation, success and error, as golden files in
tests/golden/overlay/*.txt. Each case has ``=== base.yaml`` and ``=== overlay.yaml``
and either ``=== expected`` (the result with each leaf's provenance) or
``=== error`` (the exact message). ``pytest --update-golden`` rewrites the
expected/error sections; review the diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.errors import ParityError
from parity.nodes import format_path, to_plain, walk_leaves
from parity.model.overlay import Context, Policy, apply, parse_tag
from parity.yamlio import dump, parse_text

from filetest import read_case, write_case

CASES = sorted((Path(__file__).parent / "golden" / "overlay").glob("*.txt"))


def run_case(sections: dict[str, str]) -> tuple[str, str]:
    strict = "strict: fields" not in sections["_comment"]
    policy = Policy(strict=(lambda p: True) if strict else (lambda p: len(p) == 0))
    base = parse_text(sections["base.yaml"], "base.yaml", "base")
    before = dump(to_plain(base))
    try:
        overlay = parse_text(sections["overlay.yaml"], "overlay.yaml", "overlay",
                             tag_parser=parse_tag)
        result = apply(base, overlay, Context(policy, "base -> overlay"))
    except ParityError as exc:
        assert dump(to_plain(base)) == before, "the overlay mutated its input"
        return "error", exc.render() + "\n"
    assert dump(to_plain(base)) == before, "the overlay mutated its input"
    lines = [dump(to_plain(result)).removeprefix("---\n"), "# provenance\n"]
    for path, node in walk_leaves(result):
        chain = " <- ".join(str(loc) for loc in node.hist)
        lines.append(f"# {format_path(path) or '(top)'}: {chain}\n")
    return "expected", "".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_overlay_case(case: Path, update_golden: bool) -> None:
    sections = read_case(case)
    kind, text = run_case(sections)
    if update_golden:
        sections.pop("expected", None)
        sections.pop("error", None)
        sections[kind] = text
        write_case(case, sections)
        return
    assert kind in sections, f"{case.name}: got {kind}, but the case has " \
                             f"{'error' if kind == 'expected' else 'expected'}:\n{text}"
    assert text == sections[kind]


def test_every_operation_has_a_success_and_an_error_case() -> None:
    names = [c.stem for c in CASES]
    for op in ("merge", "replace", "remove", "append", "insert", "match"):
        assert any(n.startswith(f"{op}-ok") for n in names), op
        assert any(n.startswith(f"{op}-error") for n in names), op
