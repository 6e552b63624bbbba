"""The floor plan holds (issue #15, docs/architecture.md): no import cycle, no module
importing another's private name, no source file over 450 lines without a reason at its
top, no mode branch in the command layer, and every import inside a function says why
it is not at the top."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PKG = SRC / "parity"
MAX_LINES = 450
#: The command layer: what a new mode must not need to touch (modes.py is the record).
COMMAND_LAYER = ["cli.py", "doctor.py", "offline.py", "checks.py", "checkout.py",
                 "render/__init__.py"]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = modules()


def _resolve(name: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def top_level_imports(name: str, path: Path) -> set[str]:
    """parity modules ``name`` imports when it is imported (not inside functions)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(body):
        for node in body:
            if _type_checking(node):
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.ClassDef):
                visit(node.body)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("parity"))
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(name, node, is_pkg)
                if not mod.startswith("parity"):
                    continue
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    found.add(sub if sub in MODULES else mod)
            for field in ("body", "orelse", "finalbody", "handlers"):  # if, try, with, …
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(inner)
    visit(tree.body)
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycle():
    graph = {name: top_level_imports(name, path) for name, path in MODULES.items()}
    cycles = []
    state: dict[str, int] = {}

    def walk(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_imports_a_private_name_of_another():
    bad = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = _resolve(name, node, path.name == "__init__.py")
                if not mod.startswith("parity"):
                    continue
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{path.relative_to(SRC)}:{node.lineno}: "
                                   f"from {mod} import {a.name}")
                    if f"{mod}.{a.name}" in MODULES:
                        aliases.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("parity"):
                        aliases.add(a.asname or a.name.split(".")[0])
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno}: "
                           f"{node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_no_source_file_over_450_lines_without_a_reason_at_its_top():
    bad = []
    for name, path in MODULES.items():
        lines = path.read_text().count("\n")
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if not re.search(r"^Size:", doc, re.M):
            bad.append(f"{path.relative_to(SRC)}: {lines} lines and no 'Size:' reason "
                       f"in its docstring")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("rel", COMMAND_LAYER)
def test_the_command_layer_has_no_mode_branch(rel):
    path = PKG / rel
    if not path.exists():
        pytest.fail(f"{rel} moved: update COMMAND_LAYER in {Path(__file__).name}")
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = [ast.unparse(s) for s in sides]
            literal = any(isinstance(s, ast.Constant) and s.value in ("compose", "kind")
                          for s in sides)
            if literal and any(n.endswith("mode") for n in names):
                bad.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "mode branches (use parity.modes):\n" + "\n".join(bad)


def test_every_import_inside_a_function_says_why():
    bad = []
    for name, path in MODULES.items():
        text = path.read_text()
        lines = text.split("\n")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)) \
                        and not _says_why(lines, inner.lineno - 1):
                    bad.append(f"{path.relative_to(SRC)}:{inner.lineno}: "
                               f"{lines[inner.lineno - 1].strip()}")
    assert not bad, (f"{len(bad)} imports inside functions without a '# lazy: why' "
                     "comment on the line or the line above:\n" + "\n".join(bad))


def _says_why(lines: list[str], i: int) -> bool:
    """A comment with "lazy" on the import's line, or anywhere in the run of imports
    and comments right above it (one comment can speak for a group of imports)."""
    if "lazy" in lines[i]:
        return True
    j = i - 1
    while j >= 0:
        text = lines[j].strip()
        if not (text.startswith(("import ", "from ", "#")) or text.endswith((",", "(")) or
                text.endswith(")") and not text.startswith("def ")):
            return False
        if "lazy" in text:
            return True
        j -= 1
    return False
