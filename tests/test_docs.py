"""Docs stay true: the error catalogue shows every golden error message, the
schema file is current, and the README's commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from filetest import read_case

ROOT = Path(__file__).resolve().parent.parent


def test_error_catalogue_shows_every_golden_error() -> None:
    catalogue = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for case in sorted((ROOT / "tests" / "golden" / "errors").glob("*.txt")) + sorted(
            (ROOT / "tests" / "golden" / "overlay").glob("*error*.txt")):
        first = read_case(case)["error"].splitlines()[0]
        assert first in catalogue, f"docs/errors.md lacks the message of {case.name}"


def test_readme_starts_with_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("make up") and block[1].startswith("make test")


def test_make_targets_named_in_docs_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-zA-Z0-9_ -]*):", makefile, re.M))
    names = {t for line in targets for t in line.split()}
    docs = "".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md",
                                                           *(ROOT / "docs").glob("*.md")])
    for used in set(re.findall(r"`make ([a-z][a-z0-9-]*)", docs)):
        assert used in names, f"docs mention make {used}, which the Makefile lacks"


def test_published_schema_is_current() -> None:
    from parity import cli

    assert (ROOT / "docs" / "schema.json").read_text(encoding="utf-8") == cli.schema_json(), \
        "docs/schema.json is out of date: run inv schema"
