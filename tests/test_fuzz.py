"""Random mutations of the real base/ and overlays/: whatever a hand edit does to
them, parity either succeeds or refuses with a ParityError of exit code 2 or 3,
within seconds, never with another exception, a hang or a crash.

Each case is reproducible on its own: ``FUZZ_SEED=<seed> pytest tests/test_fuzz.py
-k 'case-17'`` replays case 17 (the failure message prints the seed, the case and
every mutation). ``FUZZ_CASES`` changes how many cases run (default 300)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from parity import cli
from parity.errors import ParityError

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("FUZZ_SEED", "1414"))
CASES = int(os.environ.get("FUZZ_CASES", "300"))
CASE_SECONDS = 20

# values a hand edit might leave where a scalar was
VALUES = [
    "0", "1", "-1", "0755", "00123", "0x1F", "0o17", "1.10", "1e3", "1e999", "-.inf", ".inf",
    ".nan", ".NaN", "9223372036854775807", "9223372036854775808", "1" * 60, "1" * 5000,
    "null", "~", "", "true", "False", "yes", "[]", "{}", "[1, [2, [3]]]", "{a: {b: 1}}",
    "[" * 70 + "]" * 70, "{a: " * 40 + "1" + "}" * 40, "x" * 20000, "日本語 ✓", "'..'",
    "..", "../..", "/etc/passwd", "{x}", "'{x}'", "$VAR", "${VAR}", "$$", "'${service:nope.x}'",
    "${service:postgres.nope}", "${secret:x.y}", "'a\\nb'", '"a\\nb\\tc"', '"\\u0000"',
    "http://127.0.0.1:8080", "&a x", "*a", "'", '"', "- x", ": x", "? x", "|\n  block",
    ">-\n  folded", "!!python/object:os.system ls", "!!binary aGk=", "2027-01-31",
    "'a b c'", "UPPER", "-", "@x", "`x`", "%x", "#comment", "a # b",
    "'{x}'", "'{0}'", "'{service}{x}'", "'{service.__class__}'", "'{'", "'}'", "'{{}}'",
    "'a/b'", "'/abs'", "'a\nb'", "' '", "'x:'", "'@sha256:'", "'UPPER:Tag'", "'a..b'",
    "'-'", "'.'", "'...'",
]
TAGS = [
    "!remove", "!replace", "!append", "!merge", "!insert(after=http)",
    "!insert(before=nope, expects=2)", "!merge(by=port, expects=2+)", "!merge(missing_ok)",
    "!replace(missing_ok)", "!remove(missing_ok)", "!merge(children_missing_ok)",
    "!merge(expects=0-3)", "!merge(expects=many)", "!bogus", "!bogus(zzz)", "!",
    "!!python/object:os.system", "!!python/object/apply:os.system", "!!set", "!!omap",
    "!!str", "!!int", "!!map", "!!seq", "!!timestamp", "!<tag:x.org,2000:y>", "!merge(by=)",
    "!insert(after=http, by=port)", "!append(expects=2)",
]
KEYS = ["replicas", "image", "env", "ports", "name", "x", "services", "phase", "description",
        "NEW_KEY", "routes", "depends_on", "<<", "? complex", "'quoted key'", "1", "true",
        "null", "a.b", "[x]", "日本"]
SET_PATHS = ["services.api.replicas", "services.api.env.DATABASE_PORT", "stack.domain",
             "services.api.ports[http].port", "stack.edge.http_port", "services.nope.x",
             "services.api.image", "services.web.routes[web].host", "stack", "services..x",
             "services.api.env.NEW", "[x]", "services.api.ports[nope].port", "a" * 300]
#: values that are valid YAML strings but odd as names, formats, paths or image refs
ODD_TEXT = ["{x}", "{0}", "{service}{x}", "{service.__class__}", "{", "}", "{{}}", "a/b",
            "/abs", "../..", "..", ".", "a\nb", " ", "", "x:", "@sha256:", "UPPER:Tag",
            "a..b", "-", "$VAR", "$(VAR)", "${service:nope.x}", "${x", "日本", "a" * 300,
            "'", '"', "#", "a b", "\t", "*", "?", "%", "\\"]
#: leaves whose text is formatted, used as a name or path, or parsed as an image
ODD_PATHS = ["stack.internal_dns", "stack.domain", "stack.namespace", "stack.name",
             "services.api.image", "services.api.build.context", "services.api.build.dockerfile",
             "services.api.user", "services.api.working_dir", "identity.realm",
             "services.web.routes[web].host", "services.web.routes[web].path",
             "services.postgres.storage[data].size", "services.postgres.storage[data].path",
             "services.api.env.DATABASE_NAME", "stack.kind.node.image", "stack.edge.bind",
             "services.api.resources.limits.memory", "services.api.description"]
ENV_VARS = ["PARITY_DOMAIN", "PARITY_HTTP_PORT", "PARITY_HTTPS_PORT", "PARITY_DOMAIN",
            "PARITY_HTTP_PORT", "PARITY_IMAGE_PROFILE", "PARITY_TYPO"]
#: (mutation, weight): value edits that keep the YAML valid are the most common, so
#: most cases get past the parser into the merge, the model, the renderers and diff
KINDS = [("scalar", 5), ("set", 4), ("leaf", 5), ("odd", 4), ("tag", 3), ("env", 1),
         ("delete", 1),
         ("duplicate", 1), ("swap", 1), ("indent", 1), ("key", 1), ("truncate", 1),
         ("swap_files", 1), ("local", 1)]

_LEAVES: list[tuple] = []
_STRING_LEAVES: list[tuple] = []
_HOT_LEAVES: list[tuple] = []
#: leaves where an odd value has broken a renderer before: formats, names, paths
HOT = ("internal_dns", "domain", "namespace", "stack.name", "image", "context",
       "dockerfile", "host", "path", "realm", "keys", "size", "user", "working_dir",
       "command", "args", "content", "redirect_uris", "storage_class", "cpu", "memory")


def model_leaves(rng: random.Random) -> list[tuple]:
    """Leaf paths of the real model (kind, phase 3), computed once: every leaf, the
    ones holding text, or the ones in HOT, chosen at random."""
    if not _LEAVES:
        from parity import model
        from parity.model import Selection
        from parity.nodes import Scalar, format_path, walk_leaves

        resolved = model.load(ROOT, Selection("kind", 3))
        for path, node in walk_leaves(resolved.tree):
            _LEAVES.append(path)
            if isinstance(node, Scalar) and isinstance(node.value, str):
                _STRING_LEAVES.append(path)
            if any(h in format_path(path) for h in HOT):
                _HOT_LEAVES.append(path)
    return rng.choice([_LEAVES, _STRING_LEAVES, _HOT_LEAVES, _HOT_LEAVES])


def overlay_for(path: tuple, value: str, tag: str | None) -> str:
    """YAML text of an overlay that sets ``path`` (keys, [name] items) to ``value``."""
    from parity.nodes import ListKey

    lines: list[str] = []
    indent = 0
    for i, part in enumerate(path):
        last = i == len(path) - 1
        pad = " " * indent
        if isinstance(part, ListKey) or isinstance(part, int):
            if last:
                lines.append(f"{pad}- {(tag + ' ') if tag else ''}{value}")
                break
            lines.append(f"{pad}- name: {part}")
            indent += 2
            continue
        key = str(part)
        if last:
            lines.append(f"{pad}{key}: {(tag + ' ') if tag else ''}{value}")
        else:
            nxt = path[i + 1]
            if isinstance(nxt, (ListKey, int)) and not (i + 1 == len(path) - 1):
                lines.append(f"{pad}{key}:")
                indent += 2
            else:
                lines.append(f"{pad}{key}:")
                indent += 2
    return "\n".join(lines) + "\n"


def layer_files(root: Path) -> list[Path]:
    """The files parity reads as layers (and its policy)."""
    out = sorted((root / "base").rglob("*.yaml"))
    for d in ("phases", "modes"):
        out += sorted((root / "overlays" / d).glob("*.yaml"))
    out += sorted((root / "overlays" / "images").glob("*.yaml"))
    return out


class Mutator:
    def __init__(self, rng: random.Random, root: Path):
        self.rng = rng
        self.root = root
        self.log: list[str] = []
        self.touched: set[Path] = set()
        self.sets: list[str] = []
        self.env: dict[str, str] = {}

    def rel(self, f: Path) -> str:
        return str(f.relative_to(self.root))

    def value(self) -> str:
        return self.rng.choice(VALUES)

    def mutate(self) -> None:
        files = layer_files(self.root)
        names = [k for k, _ in KINDS]
        weights = [w for _, w in KINDS]
        for _ in range(self.rng.choices([1, 2, 3], [6, 3, 1])[0]):
            kind = self.rng.choices(names, weights)[0]
            f = self.rng.choice(files)
            if kind == "tag" and self.rng.random() < 0.7:
                overlays = [g for g in files if "overlays" in g.parts]
                f = self.rng.choice(overlays)
            getattr(self, "m_" + kind)(f, files)

    # ----------------------------------------------------------- line mutations
    def lines(self, f: Path) -> list[str]:
        try:
            return f.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError):
            return []

    def write(self, f: Path, lines: list[str]) -> None:
        self.touched.add(f)
        f.write_text("\n".join(lines), encoding="utf-8")

    def pick(self, lines: list[str]) -> int:
        return self.rng.randrange(len(lines)) if lines else 0

    def m_delete(self, f, files):
        lines = self.lines(f)
        if lines:
            i = self.pick(lines)
            self.log.append(f"delete {self.rel(f)}:{i + 1} {lines[i]!r}")
            del lines[i]
            self.write(f, lines)

    def m_duplicate(self, f, files):
        lines = self.lines(f)
        if lines:
            i = self.pick(lines)
            self.log.append(f"duplicate {self.rel(f)}:{i + 1} {lines[i]!r}")
            lines.insert(i, lines[i])
            self.write(f, lines)

    def m_swap(self, f, files):
        lines = self.lines(f)
        if len(lines) > 1:
            i, j = self.pick(lines), self.pick(lines)
            self.log.append(f"swap {self.rel(f)}:{i + 1}<->{j + 1}")
            lines[i], lines[j] = lines[j], lines[i]
            self.write(f, lines)

    def m_indent(self, f, files):
        lines = self.lines(f)
        if lines:
            i = self.pick(lines)
            delta = self.rng.choice([-4, -2, -1, 1, 2, 4])
            self.log.append(f"indent {self.rel(f)}:{i + 1} by {delta}")
            lines[i] = (" " * delta + lines[i]) if delta > 0 else lines[i][-delta:]
            self.write(f, lines)

    def m_scalar(self, f, files):
        lines = self.lines(f)
        cand = [i for i, ln in enumerate(lines)
                if ": " in ln.split("#")[0] or ln.lstrip().startswith("- ")]
        if cand:
            i = self.rng.choice(cand)
            v = self.value()
            ln = lines[i]
            head = ln.split(": ", 1)[0] + ": " if ": " in ln else ln[:ln.index("- ") + 2]
            self.log.append(f"scalar {self.rel(f)}:{i + 1} {head.strip()!r} <- {v[:80]!r}")
            lines[i] = head + v
            self.write(f, lines)

    def m_tag(self, f, files):
        lines = self.lines(f)
        cand = [i for i, ln in enumerate(lines)
                if ": " in ln or ln.rstrip().endswith(":") or ln.lstrip().startswith("- ")]
        if cand:
            i = self.rng.choice(cand)
            tag = self.rng.choice(TAGS)
            ln = lines[i]
            where = self.rng.random()
            if where < 0.2:  # on the key
                indent = len(ln) - len(ln.lstrip())
                new = ln[:indent] + tag + " " + ln[indent:]
            elif ln.lstrip().startswith("- "):
                k = ln.index("- ") + 2
                new = ln[:k] + tag + " " + ln[k:]
            elif ": " in ln:
                k = ln.index(": ") + 2
                new = ln[:k] + tag + " " + ln[k:]
            else:
                new = ln.rstrip() + " " + tag
            self.log.append(f"tag {self.rel(f)}:{i + 1} {new.strip()[:80]!r}")
            lines[i] = new
            self.write(f, lines)

    def m_key(self, f, files):
        lines = self.lines(f)
        i = self.pick(lines)
        indent = " " * self.rng.choice([0, 2, 4, 6, 8])
        new = f"{indent}{self.rng.choice(KEYS)}: {self.value()}"
        self.log.append(f"key {self.rel(f)}:{i + 1} {new[:80]!r}")
        lines.insert(i, new)
        self.write(f, lines)

    def m_truncate(self, f, files):
        data = f.read_bytes()
        n = self.rng.randrange(len(data) + 1)
        self.log.append(f"truncate {self.rel(f)} at byte {n}")
        self.touched.add(f)
        f.write_bytes(data[:n])

    def m_swap_files(self, f, files):
        g = self.rng.choice(files)
        self.log.append(f"swap contents {self.rel(f)} <-> {self.rel(g)}")
        a, b = f.read_bytes(), g.read_bytes()
        self.touched |= {f, g}
        f.write_bytes(b)
        g.write_bytes(a)

    def m_local(self, f, files):
        """A local overlay made of another layer's content (mutated later, maybe)."""
        sub = self.rng.choice(["", "", "kind/", "compose/"])
        target = self.root / "overlays" / "local" / f"{sub}fuzz{len(self.log)}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        self.log.append(f"local {self.rel(target)} = {self.rel(f)}")
        if self.rng.random() < 0.7:
            self.m_scalar(target, files)

    def m_leaf(self, f, files):
        """A local overlay that sets one real leaf of the model, maybe with a tag."""
        from parity.nodes import format_path

        path = self.rng.choice(model_leaves(self.rng))
        tag = self.rng.choice(TAGS) if self.rng.random() < 0.3 else None
        value = self.value() if self.rng.random() < 0.8 else self.rng.choice(KEYS)
        sub = self.rng.choice(["", "", "kind/", "compose/"])
        target = self.root / "overlays" / "local" / f"{sub}leaf{len(self.log)}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(overlay_for(path, value, tag), encoding="utf-8")
        self.log.append(f"leaf {self.rel(target)}: {format_path(path)} = "
                        f"{(tag + ' ') if tag else ''}{value[:80]!r}")

    def m_odd(self, f, files):
        """An odd string (quoted, so it stays a string) where text is formatted, used
        as a name or path, or parsed as an image reference."""
        import json

        path = self.rng.choice(ODD_PATHS)
        value = self.rng.choice(ODD_TEXT)
        if self.rng.random() < 0.5:
            item = f"{path}={value}"
            self.sets.append(item)
            self.log.append(f"odd --set {item[:100]!r}")
            return
        from parity.model import parse_path

        target = self.root / "overlays" / "local" / f"odd{len(self.log)}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(overlay_for(parse_path(path), json.dumps(value), None),
                          encoding="utf-8")
        self.log.append(f"odd {self.rel(target)}: {path} = {value[:80]!r}")

    def m_set(self, f, files):
        from parity.nodes import format_path

        path = format_path(self.rng.choice(model_leaves(self.rng))) \
            if self.rng.random() < 0.8 else self.rng.choice(SET_PATHS)
        item = f"{path}={self.value()}"
        self.sets.append(item)
        self.log.append(f"--set {item[:100]!r}")

    def m_env(self, f, files):
        var = self.rng.choice(ENV_VARS)
        value = self.value().replace("\0", "")
        self.env[var] = value
        self.log.append(f"env {var}={value[:80]!r}")


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "repo"
    root.mkdir()
    for name in ("base", "overlays", "images", "apps"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("local"))
    return root


def _restore(root: Path, touched: set[Path]) -> None:
    """Undo a case: the files it changed, and the local overlays it made."""
    shutil.rmtree(root / "overlays" / "local", ignore_errors=True)
    for p in touched:
        if p.is_relative_to(root / "overlays" / "local"):
            continue
        src = ROOT / p.relative_to(root)
        p.write_bytes(src.read_bytes())


class CaseTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


@pytest.mark.parametrize("case", range(CASES), ids=[f"case-{i}" for i in range(CASES)])
def test_fuzz_case(case: int, fuzz_root: Path, monkeypatch) -> None:
    root = fuzz_root
    rng = random.Random(SEED * 100_003 + case)
    mut = Mutator(rng, root)
    try:
        mut.mutate()
        _check(root, mut, case, monkeypatch)
    finally:
        _restore(root, mut.touched)


def _check(root: Path, mut: Mutator, case: int, monkeypatch) -> None:
    for k in list(os.environ):
        if k.startswith("PARITY_"):
            monkeypatch.delenv(k)
    for k, v in mut.env.items():
        monkeypatch.setenv(k, v)
    what = f"FUZZ_SEED={SEED} case {case}: " + "; ".join(mut.log)
    step = "?"
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    start = time.monotonic()
    try:
        ok_modes = []
        for mode in ("compose", "kind"):
            step = f"config {mode}"
            if _run(lambda: cli.config(root, cli.selection(mode, 1, None, mut.sets)), what,
                    step):
                ok_modes.append(mode)
        for mode in ok_modes:
            step = f"render {mode}"
            _run(lambda: cli.render(root, cli.selection(mode, 1, None, mut.sets),
                                    out=str(root / ".parity" / "fuzz-out" / mode)), what, step)
        step = "diff"
        _run(lambda: cli.diff(root, "compose", "kind", sets=mut.sets), what, step)
    except CaseTimeout:
        pytest.fail(f"{what}\n  {step} ran longer than {CASE_SECONDS} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - start < CASE_SECONDS, what


def _run(fn, what: str, step: str) -> bool:
    """True on success; a ParityError of exit 2 or 3 is a fine refusal; anything
    else fails the case with its seed and mutations."""
    try:
        fn()
        return True
    except ParityError as exc:
        assert exc.exit_code in (2, 3), (
            f"{what}\n  {step}: exit {exc.exit_code}, expected 2 or 3:\n{exc.render()}")
        return False
    except CaseTimeout:
        raise
    except RecursionError as exc:  # pragma: no cover - the failure report
        raise AssertionError(f"{what}\n  {step}: RecursionError {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the fuzz reports every other exception
        import traceback

        tb = "".join(traceback.format_exception(exc)[-6:])
        raise AssertionError(f"{what}\n  {step}: {type(exc).__name__}: {exc}\n{tb}") from None
