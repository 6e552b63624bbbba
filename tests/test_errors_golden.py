"""Every class of bad input, as golden files in tests/golden/errors/*.txt.

A case edits a copy of the default stack (``=== file: PATH`` replaces a file,
``=== append: PATH`` adds to one), runs ``inv config`` (``=== args``: mode, phase,
set, env) and compares the exact message (``=== error``). Every case must end in
exit code 2 with nothing written. ``pytest --update-golden`` rewrites the error
sections; review the diff."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from parity import cli
from parity.errors import ParityError

from filetest import apply_edits, read_case, write_case

CASES = sorted((Path(__file__).parent / "golden" / "errors").glob("*.txt"))


def run_case(root: Path, sections: dict[str, str]) -> str:
    apply_edits(root, sections)
    args = dict(mode="compose", phase="1")
    sets, env = [], {}
    for word in shlex.split(sections.get("args", "")):
        key, _, value = word.partition("=")
        if key == "set":
            sets.append(value)
        elif key.startswith("PARITY_"):
            env[key] = value
        else:
            args[key] = value
    try:
        cli.config(root, cli.selection(args["mode"], args["phase"], args.get("profile"),
                                       sets, env))
    except ParityError as exc:
        assert exc.exit_code == 2, f"exit code {exc.exit_code}, expected 2"
        return exc.render() + "\n"
    raise AssertionError("the case did not fail")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_error_case(case: Path, repo_copy: Path, update_golden: bool) -> None:
    sections = read_case(case)
    text = run_case(repo_copy, sections)
    assert not (repo_copy / ".parity").exists(), "a failed command wrote files"
    if update_golden:
        sections["error"] = text
        write_case(case, sections)
        return
    assert text == sections["error"]


REQUIRED = ["malformed-yaml", "unknown-key", "type-conflict", "overlay-zero-matches",
            "overlay-several-matches", "unknown-reference", "dependency-cycle",
            "duplicate-port-name", "not-dns-label", "later-phase-dependency", "alias-bomb",
            "oversized-file"]


def test_every_required_bad_input_class_has_a_case() -> None:
    names = {c.stem for c in CASES}
    missing = [r for r in REQUIRED if r not in names]
    assert not missing, f"no golden error case for {missing}"
