"""Model rules (parity.rules) as golden files in tests/golden/rules/: each rule has a
failing case (``*-fail.txt``) and a passing one (``*-pass.txt``). A case edits a
copy of the default stack (``=== file:`` / ``=== append:``), selects a mode and
phase (``=== args``) and compares every violation, message and fix included
(``=== violations``). ``pytest --update-golden`` rewrites that section."""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path

import pytest

from parity import cli, model, rules
from parity.errors import InputError

from filetest import apply_edits, read_case, write_case

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted((Path(__file__).parent / "golden" / "rules").glob("*.txt"))


@pytest.fixture(autouse=True)
def machine(monkeypatch):
    """The kind node's capacity is this machine's; the goldens assume 4 CPUs, 8 GiB."""
    monkeypatch.setattr(rules.resources, "machine", lambda: (4.0, 8.0 * 1024 ** 3))


def apply(root: Path, sections: dict[str, str]) -> dict[str, str]:
    apply_edits(root, sections)
    return dict(w.split("=", 1) for w in shlex.split(sections.get("args", "")))


def run(root: Path, args: dict[str, str]) -> list[rules.Violation]:
    sel = cli.selection(args.get("mode", "compose"), args.get("phase", "1"),
                        args.get("profile"))
    return rules.check(model.load(root, sel), root)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_rule_case(case: Path, repo_copy: Path, update_golden: bool) -> None:
    sections = read_case(case)
    violations = run(repo_copy, apply(repo_copy, sections))
    text = "".join(v.render().replace(str(repo_copy), "<repo>") + "\n" for v in violations)
    if case.stem.endswith("-pass"):
        assert not [v for v in violations if v.failing], text
    else:
        assert [v for v in violations if v.failing], f"{case.name} caught nothing"
    if update_golden:
        sections["violations"] = text
        write_case(case, sections)
        return
    assert text == sections["violations"]


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    stems = {c.stem for c in CASES}
    for r in rules.RULES:
        assert any(s.startswith(r.id) and s.endswith("-fail") for s in stems), r.id
        assert any(s.startswith(r.id) and s.endswith("-pass") for s in stems), r.id


def test_every_rule_of_the_package_is_listed_once() -> None:
    """RULES is an explicit list: a rule defined in a theme module but not listed
    would never run."""
    import importlib
    import pkgutil

    defined = []
    for info in pkgutil.iter_modules(rules.__path__):
        module = importlib.import_module(f"parity.rules.{info.name}")
        defined += [v for v in vars(module).values() if isinstance(v, rules.RuleDef)]
    assert len(rules.RULES) == len({id(r) for r in rules.RULES})
    assert {id(r) for r in defined} == {id(r) for r in rules.RULES}


@pytest.mark.parametrize("mode", ["compose", "kind"])
@pytest.mark.parametrize("phase", [1, 2, 3])
@pytest.mark.parametrize("profile", ["default", "offline"])
def test_the_default_stack_passes_every_rule(mode: str, phase: int, profile: str) -> None:
    violations = rules.check(model.load(ROOT, cli.selection(mode, phase, profile)), ROOT)
    assert violations == [], "\n".join(v.render() for v in violations)


def test_every_rule_is_in_the_error_catalogue() -> None:
    import subprocess
    import sys

    catalogue = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for r in rules.RULES:
        assert f"### {r.id}" in catalogue, f"docs/errors.md lacks rule {r.id}"
    stale = subprocess.run([sys.executable, str(ROOT / "tests" / "gen_rules_doc.py"),
                            "--check"]).returncode
    assert stale == 0, "docs/errors.md shows old rule messages: python tests/gen_rules_doc.py"


def test_lint_runs_the_rules_and_exits_1(repo_copy: Path) -> None:
    (repo_copy / "overlays" / "local").mkdir()
    (repo_copy / "overlays" / "local" / "x.yaml").write_text(
        "services:\n  postgres:\n    replicas: 2\n")
    text, code = cli.lint(repo_copy, cli.selection("kind", 1))
    assert code == 1
    assert ("overlays/local/x.yaml:3: services.postgres.replicas: [stateful-replicas] "
            "postgres is stateful with 2 replicas") in text
    text, code = cli.lint(repo_copy, cli.selection("compose", 1))
    assert code == 1, text  # compose scales it too: two containers on one volume
    assert "[stateful-replicas]" in text


def write_waivers(root: Path, body: str) -> None:
    policy = root / "base" / "parity-policy.yaml"
    policy.write_text(policy.read_text() + "waivers:\n" + body)


@pytest.mark.parametrize("body,message", [
    ("  - {rule: floating-image-tags, path: x, reason: r, until: 2999-01-01}\n",
     "unknown rule 'floating-image-tags' (did you mean 'floating-image-tag'?)"),
    ("  - {rule: floating-image-tag, path: x, until: 2999-01-01}\n",
     "missing required key 'reason'"),
    ("  - {rule: floating-image-tag, path: x, reason: r, until: someday}\n",
     "until 'someday' is not a date"),
])
def test_bad_waivers_are_input_errors(repo_copy: Path, body: str, message: str) -> None:
    write_waivers(repo_copy, body)
    with pytest.raises(InputError) as exc:
        rules.load_waivers(repo_copy)
    assert exc.value.exit_code == 2
    assert exc.value.render().startswith("base/parity-policy.yaml:")
    assert message in exc.value.render()


def test_a_waiver_expires(repo_copy: Path) -> None:
    write_waivers(repo_copy, "  - {rule: floating-image-tag, path: services.*.image, "
                             "reason: r, until: 2026-06-30}\n")
    assert not rules.load_waivers(repo_copy, date(2026, 6, 30))[0].expired
    assert rules.load_waivers(repo_copy, date(2026, 7, 1))[0].expired
