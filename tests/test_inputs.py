"""Hand-written inputs parity must survive: deep nesting, files that are not
regular files, tags where they are not read, counts an overlay expects, nulls,
numbers written as text, and the shape of the layer directories."""

from __future__ import annotations

import json
import os
import re
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

from parity import cli, model
from parity.errors import InputError, ParityError
from parity.model import Selection, describe, plan_layers, validate
from parity.model.overlay import parse_tag
from parity.yamlio import MAX_DEPTH, MAX_INPUT_BYTES, parse_text, read_input

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def deadline(seconds: int = 10):
    """Fail instead of hanging (a FIFO read blocks forever)."""

    def boom(signum, frame):
        raise AssertionError(f"still running after {seconds} s (a blocking read?)")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def config(root: Path, mode: str = "compose", sets=(), env=None, fmt: str = "yaml") -> str:
    return cli.config(root, cli.selection(mode, 1, None, list(sets), env or {}), fmt)


def refused(root: Path, **kw) -> str:
    with deadline():
        with pytest.raises(InputError) as exc:
            config(root, **kw)
    assert exc.value.exit_code == 2
    return exc.value.render()


def local(root: Path, name: str, text: str) -> Path:
    f = root / "overlays" / "local" / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text, encoding="utf-8")
    return f


# --------------------------------------------------------------------------- 1 depth

def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["base/deep.yaml", "overlays/local/deep.yaml"])
def test_deep_nesting_is_refused_with_file_and_line(repo_copy: Path, where: str) -> None:
    f = repo_copy / where
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(f"services:\n  api:\n    env:\n      X: {nested(400)}\n")
    text = refused(repo_copy)
    assert text.startswith(f"{where}:4: mappings and lists are nested more than "
                           f"{MAX_DEPTH} levels deep")


def test_deep_block_mappings_are_refused(repo_copy: Path) -> None:
    body = "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n"
    local(repo_copy, "deep.yaml", body)
    assert "nested more than 64 levels deep" in refused(repo_copy)


def test_aliases_cannot_nest_deeper_than_the_limit() -> None:
    text = f"a: &x {nested(MAX_DEPTH - 5)}\nb: {'[' * 10}*x{']' * 10}\n"
    with pytest.raises(InputError, match="nested more than 64 levels deep"):
        parse_text(text, "f.yaml", "base")


def test_nesting_at_the_limit_is_read_and_every_later_walk_survives(repo_copy: Path) -> None:
    # the deepest input parity accepts reaches the merge, defaults, schema, diff
    local(repo_copy, "deep.yaml", "services:\n  api:\n    env: !merge(children_missing_ok)\n"
                                  f"      X: {nested(MAX_DEPTH - 4)}\n")
    assert "expected a string, number, boolean" in refused(repo_copy)
    with pytest.raises(InputError):
        cli.diff(repo_copy, "compose", "kind")


def test_a_failed_deep_parse_leaves_no_state_behind() -> None:
    with pytest.raises(InputError):
        parse_text(f"a: {nested(500)}\n", "f.yaml", "base")
    assert parse_text(f"a: {nested(MAX_DEPTH - 1)}\n", "f.yaml", "base").entries["a"]


def test_deep_set_value_is_text_not_a_crash(repo_copy: Path) -> None:
    out = config(repo_copy, sets=[f"services.api.description={nested(500)}"])
    assert nested(500) in out


# --------------------------------------------------------------------------- 2 files

@pytest.mark.parametrize("where", ["base/x.yaml", "overlays/local/x.yaml",
                                   "overlays/local/kind/x.yaml", "base/services/x.yml"])
def test_a_fifo_is_refused_without_blocking(repo_copy: Path, where: str) -> None:
    f = repo_copy / where
    f.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(f)
    text = refused(repo_copy, mode="kind")
    assert text.startswith(f"{where}: not a regular file or directory (a named pipe)")


def test_read_input_refuses_special_files_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    with deadline():
        for path in (fifo, Path("/dev/zero"), tmp_path):
            with pytest.raises(InputError, match="not a regular file"):
                read_input(path, str(path))


def test_symlink_to_dev_zero_is_refused_unread(repo_copy: Path) -> None:
    link = repo_copy / "overlays" / "local" / "zero.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to("/dev/zero")
    assert refused(repo_copy).startswith(
        "overlays/local/zero.yaml: a symlink that resolves outside the repository")


def test_symlink_outside_the_repository_is_refused_without_echoing_it(
        repo_copy: Path, monkeypatch) -> None:
    outside = repo_copy.parent / "secret.yaml"
    outside.write_text("password: hunter2-do-not-echo\n: : broken\n")
    for where in ("base/services/evil.yaml", "overlays/local/evil.yaml"):
        link = repo_copy / where
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(outside)
        opened: list[str] = []
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda p, *a, **k: (opened.append(str(p)),
                                                              real_open(p, *a, **k))[1])
        text = refused(repo_copy)
        monkeypatch.undo()
        assert text.startswith(f"{where}: a symlink that resolves outside the repository")
        assert "hunter2" not in text and "broken" not in text
        assert not any("evil" in p or "secret" in p for p in opened)
        link.unlink()


def test_symlink_inside_the_repository_is_read(repo_copy: Path) -> None:
    real = repo_copy / "overlays" / "local" / "real.txt"
    real.parent.mkdir(parents=True)
    real.write_text("services:\n  api:\n    replicas: 5\n")
    (real.parent / "me.yaml").symlink_to(real)
    assert model.load(repo_copy, Selection("compose", 1)).stack.services["api"].replicas == 5


def test_a_huge_file_is_refused_before_it_is_read(repo_copy: Path, monkeypatch) -> None:
    big = local(repo_copy, "big.yaml", "")
    with open(big, "wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    read: list[int] = []
    real_read = os.read

    def counting_read(fd, n):
        data = real_read(fd, n)
        if os.readlink(f"/proc/self/fd/{fd}") == str(big):
            read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    text = refused(repo_copy)
    assert text.startswith("overlays/local/big.yaml: file is 104857600 bytes, more than the")
    assert sum(read) == 0


def test_read_input_never_reads_more_than_the_limit(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "f.yaml"
    f.write_bytes(b"#" * (MAX_INPUT_BYTES + 10))
    real_fstat = os.fstat

    class Lying:  # a file that grows after fstat: the size check cannot see it
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, 10

    monkeypatch.setattr(os, "fstat", lambda fd: Lying(real_fstat(fd)))
    read: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: (lambda b: (read.append(len(b)), b)[1])(
        real_read(fd, n)))
    with pytest.raises(InputError, match="more than the"):
        read_input(f, "f.yaml")
    assert sum(read) == MAX_INPUT_BYTES + 1


# --------------------------------------------------------------------------- 3 tags

@pytest.mark.parametrize("where", ["base/services/api.yaml", "overlays/local/me.yaml"])
@pytest.mark.parametrize("tag", ["!remove", "!bogus(zzz)", "!replace", "!!int"])
def test_a_tag_on_a_key_is_refused_everywhere(repo_copy: Path, where: str, tag: str) -> None:
    f = repo_copy / where
    f.parent.mkdir(parents=True, exist_ok=True)
    if where.startswith("base"):
        f.write_text(f.read_text().replace("    description:", f"    {tag} description:"))
    else:
        f.write_text(f"services:\n  api:\n    {tag} description: x\n")
    text = refused(repo_copy)
    assert f"YAML tag '{tag}' on the mapping key 'description'" in text
    assert text.startswith(f"{where}:")


def test_str_tag_on_a_key_is_harmless() -> None:
    assert parse_text("!!str a: 1\n", "f", "base").entries["a"].value == 1


@pytest.mark.parametrize("text", [
    "a: !!python/object:os.system {x: 1}\n",
    "a: !!python/object/apply:os.system [ls]\n",
    "a: !!python/name:os.system x\n",
    "a: !!set {x, y}\n",
    "a: !!omap [{x: 1}]\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!timestamp 2020-01-01\n",
    "a: !!map [x]\n",
    "a: !!seq {x: 1}\n",
    "a: !!str {x: 1}\n",
    "a: !!int [1]\n",
    "a: !<tag:example.com,2000:app/foo> x\n",
])
def test_tags_parity_does_not_read_are_refused(text: str) -> None:
    for parser in (None, parse_tag):
        with pytest.raises(InputError) as exc:
            parse_text(text, "f.yaml", "overlay", tag_parser=parser)
        assert exc.value.render().startswith("f.yaml:1:")


def test_standard_tags_that_fit_are_read() -> None:
    tree = parse_text("a: !!str 5\nb: !!int '7'\nc: !!map {x: 1}\nd: !!seq [1]\ne: !!null ''\n"
                      "f: !!bool true\ng: !!float 1\nh: 2020-01-01\n", "f", "base")
    plain = {k: getattr(v, "value", None) for k, v in tree.entries.items()}
    assert plain["a"] == "5" and plain["b"] == 7 and plain["e"] is None
    assert plain["f"] is True and plain["g"] == 1.0 and plain["h"] == "2020-01-01"


# --------------------------------------------------------------------------- 4 expects

def _doc_tags() -> list[str]:
    docs = [ROOT / "docs" / "overlays.md",
            ROOT / "docs" / "decisions" / "0006-overlay-operations-as-yaml-tags.md",
            ROOT / "README.md"]
    tags: set[str] = set()
    for d in docs:
        for m in re.finditer(r"!(merge|replace|remove|append|insert)\(([^)`]*)\)",
                             d.read_text(encoding="utf-8")):
            if "KEY" in m.group(2) or "N" in m.group(2) or "FIELD" in m.group(2):
                continue  # placeholders: before=KEY, expects=N
            tags.add(m.group(0))
    return sorted(tags)


def test_docs_show_tags_and_every_one_parses() -> None:
    tags = _doc_tags()
    assert "!merge(by=port, expects=2+)" in tags
    assert "!merge(by=host, expects=2+)" in tags
    for tag in tags:
        node = parse_text(f"a:\n  - {tag} {{name: x}}\n", "f.yaml", "overlay",
                          tag_parser=parse_tag).entries["a"].items[0]
        assert node.op is not None and node.op.name == tag[1:].split("(")[0]


@pytest.mark.parametrize("spelling,expected", [
    ("expects=2", (2, 2)), ("expects=2+", (2, None)), ("expects=0-3", (0, 3)),
    ("expects = 2+", (2, None)), ("by=port, expects=1+", (1, None)),
    ("by=port;expects=1", (1, 1)), ("by=port,  expects=0-1", (0, 1)),
])
def test_expects_grammar(spelling: str, expected) -> None:
    node = parse_text(f"a:\n  - !merge({spelling}) {{port: x}}\n", "f", "overlay",
                      tag_parser=parse_tag).entries["a"].items[0]
    assert node.op.expects == expected


def test_insert_enforces_expects(repo_copy: Path) -> None:
    local(repo_copy, "me.yaml", "services:\n  api:\n    ports:\n"
                                "      - !insert(after=http, expects=2) {name: dbg, port: 5005}\n")
    text = refused(repo_copy)
    assert text.startswith("overlays/local/me.yaml:4: services.api.ports[name=http]: Expected 2 "
                           "items with name=http to insert next to, but was 1")


def test_insert_missing_ok_without_anchor_inserts_nothing(repo_copy: Path) -> None:
    local(repo_copy, "me.yaml", "services:\n  api:\n    ports:\n"
                                "      - !insert(after=nope, missing_ok) {name: dbg, port: 5005}\n")
    ports = model.load(repo_copy, Selection("compose", 1)).stack.services["api"].ports
    assert "dbg" not in [p.name for p in ports]


# --------------------------------------------------------------------------- 5 null

def test_a_null_takes_a_mapping_or_list_from_a_later_layer(repo_copy: Path) -> None:
    local(repo_copy, "a.yaml", "services:\n  api:\n    resources: !replace\n"
                               "    command: !replace\n")
    local(repo_copy, "kind/b.yaml", "services:\n  api:\n    resources:\n      limits:\n"
                                    "        memory: 1Gi\n    command: [serve]\n")
    api = model.load(repo_copy, Selection("kind", 1)).stack.services["api"]
    assert api.resources == {"limits": {"memory": "1Gi"}}
    assert api.command == ("serve",)


# --------------------------------------------------------------------------- 6 defaults

def test_matching_by_a_field_sees_its_schema_default(repo_copy: Path) -> None:
    api = repo_copy / "base" / "services" / "api.yaml"
    api.write_text(api.read_text().replace("path: /, port: http}", "port: http}")
                   .replace(", protocol: http}", "}"))
    assert "path: /," not in api.read_text() and "protocol" not in api.read_text()
    local(repo_copy, "me.yaml", "services:\n  api:\n    routes:\n"
                                "      - !merge(by=path) {path: /, host: apix}\n"
                                "    ports:\n      - !merge(by=protocol) {protocol: tcp, "
                                "port: 8081}\n")
    api_svc = model.load(repo_copy, Selection("compose", 1)).stack.services["api"]
    assert [(r.host, r.path) for r in api_svc.routes] == [("apix", "/")]
    assert [p.port for p in api_svc.ports] == [8081]


# --------------------------------------------------------------------------- 7 numbers

def test_numbers_where_a_string_is_wanted_keep_the_text_written(repo_copy: Path) -> None:
    local(repo_copy, "me.yaml", "services:\n  api:\n    env: !merge(children_missing_ok)\n"
                                "      MODE: 0755\n      ID: 00123\n      V: 1.10\n"
                                "      HEX: 0x1F\n      ON: true\n      N: 8\n"
                                "    args: [--port, 8080, --ratio, 0.50]\n"
                                "    build:\n      args: !merge(children_missing_ok)\n"
                                "        VERSION: 1.20\n"
                                "    resources:\n      requests: {cpu: 1}\n")
    data = json.loads(config(repo_copy, fmt="json"))
    api = data["services"]["api"]
    assert {k: api["env"][k] for k in ("MODE", "ID", "V", "HEX", "ON", "N")} == {
        "MODE": "0755", "ID": "00123", "V": "1.10", "HEX": "0x1F", "ON": True, "N": "8"}
    assert api["args"] == ["--port", "8080", "--ratio", "0.50"]
    assert api["build"]["args"]["VERSION"] == "1.20"
    assert api["resources"]["requests"]["cpu"] == "1"
    assert data["services"]["api"]["replicas"] == 1  # integers stay integers


def test_set_and_environment_values_keep_their_text(repo_copy: Path) -> None:
    data = json.loads(config(repo_copy, sets=["services.api.env.DATABASE_PORT=0755"],
                             fmt="json"))
    assert data["services"]["api"]["env"]["DATABASE_PORT"] == "0755"


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "1e999",
                                   "9223372036854775808", "-9223372036854775809",
                                   "0x10000000000000000", "1" * 5000])
def test_nan_inf_and_huge_integers_are_refused_anywhere(repo_copy: Path, value: str) -> None:
    local(repo_copy, "me.yaml", f"services:\n  api:\n    env:\n      DATABASE_PORT: {value}\n")
    text = refused(repo_copy)
    assert text.startswith("overlays/local/me.yaml:4: ")
    assert "finite number" in text or "does not fit in 64 bits" in text
    assert "finite number" in text or value not in text  # digits are never echoed
    assert len(text) < 400
    (repo_copy / "overlays" / "local" / "me.yaml").unlink()
    text = refused(repo_copy, sets=[f"stack.edge.http_port={value}"])
    assert text.startswith(f"--set stack.edge.http_port={value}: ")
    text = refused(repo_copy, env={"PARITY_HTTPS_PORT": value})
    assert text.startswith("$PARITY_HTTPS_PORT: ")


def test_64_bit_bounds_are_accepted() -> None:
    tree = parse_text("a: 9223372036854775807\nb: -9223372036854775808\n", "f", "base")
    assert tree.entries["a"].value == 2 ** 63 - 1


def test_a_set_value_with_a_newline_is_one_string(repo_copy: Path) -> None:
    data = json.loads(config(repo_copy, sets=["services.api.description=a\nreplicas: 9"],
                             fmt="json"))
    assert data["services"]["api"]["description"] == "a\nreplicas: 9"
    assert data["services"]["api"]["replicas"] == 1


# --------------------------------------------------------------------------- 8 layout

def test_yml_is_read_like_yaml_everywhere(repo_copy: Path) -> None:
    local(repo_copy, "me.yml", "services:\n  api:\n    replicas: 3\n")
    local(repo_copy, "kind/more.yml", "services:\n  api:\n    replicas: 4\n")
    (repo_copy / "base" / "extra.yml").write_text("services:\n  api:\n    user: app\n")
    phase3 = repo_copy / "overlays" / "phases" / "3.yaml"
    phase3.rename(phase3.with_suffix(".yml"))
    layers = plan_layers(repo_copy, Selection("kind", 3))
    rels = [layer.rel for layer in layers]
    assert "overlays/local/me.yml" in rels and "overlays/local/kind/more.yml" in rels
    assert "base/extra.yml" in rels and "overlays/phases/3.yml" in rels
    assert describe(layers).startswith("base -> phase:2 -> phase:3 -> mode:kind")
    stack = model.load(repo_copy, Selection("kind", 3)).stack
    assert stack.services["api"].replicas == 4 and stack.services["api"].user == "app"


def test_a_yml_image_profile_is_a_profile(repo_copy: Path) -> None:
    images = repo_copy / "overlays" / "images"
    (images / "default.yaml").rename(images / "mine.yml")
    layers = plan_layers(repo_copy, Selection("compose", 1, profile="mine"))
    assert layers[-1].rel == "overlays/images/mine.yml"


def test_notes_and_hidden_files_are_not_layers(repo_copy: Path) -> None:
    local(repo_copy, "README.md", "notes")
    local(repo_copy, ".me.yaml.swp", "\0\0")
    local(repo_copy, "me.yaml~", "not: read")
    assert [layer.rel for layer in plan_layers(repo_copy, Selection("compose", 1))
            if layer.name == "local"] == []


@pytest.mark.parametrize("where", ["overlays/local", "overlays/local/kind", "base/services",
                                   "overlays"])
def test_an_unreadable_directory_is_an_error_naming_it(repo_copy: Path, where: str,
                                                       monkeypatch) -> None:
    (repo_copy / "overlays" / "local" / "kind").mkdir(parents=True)
    target = str(repo_copy / where)
    real = os.listdir

    def listdir(p):
        if str(p) == target:
            raise PermissionError(13, "Permission denied")
        return real(p)

    monkeypatch.setattr(os, "listdir", listdir)
    text = refused(repo_copy, mode="kind")
    assert text.startswith(f"{where}/: cannot read directory: Permission denied")


def test_an_unreadable_file_is_an_error_naming_it(repo_copy: Path, monkeypatch) -> None:
    f = local(repo_copy, "me.yaml", "{}\n")
    real = os.open

    def fake_open(p, *a, **k):
        if str(p) == str(f):
            raise PermissionError(13, "Permission denied")
        return real(p, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)
    assert refused(repo_copy).startswith(
        "overlays/local/me.yaml: cannot read file: Permission denied")


@pytest.mark.parametrize("where,message", [
    ("overlays/phases/4.yaml", "unknown phase file '4.yaml'"),
    ("overlays/phases/extra/x.yaml", "unknown phase directory 'extra'"),
    ("overlays/modes/kinds.yml", "unknown mode file 'kinds.yml' (did you mean 'kind'?)"),
    ("overlays/me.yaml", "unknown file 'me.yaml' in overlays/"),
    ("overlays/locals/me.yaml", "unknown directory 'locals' in overlays/"),
    ("overlays/local/kinds/me.yaml", "unknown local overlay directory 'kinds'"),
    ("overlays/local/kind/sub/me.yaml", "a directory in overlays/local/kind/ is not read"),
])
def test_entries_parity_would_never_read_are_refused(repo_copy: Path, where: str,
                                                     message: str) -> None:
    f = repo_copy / where
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("{}\n")
    for mode in ("compose", "kind"):
        assert message in refused(repo_copy, mode=mode)


def test_a_broken_symlink_is_an_error(repo_copy: Path) -> None:
    link = repo_copy / "overlays" / "local" / "me.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(repo_copy / "overlays" / "local" / "gone.yaml")
    assert refused(repo_copy).startswith("overlays/local/me.yaml: a broken symlink")


def test_errors_are_parity_errors_not_tracebacks(repo_copy: Path) -> None:
    local(repo_copy, "me.yaml", "services:\n  api:\n    !!python/object:x description: y\n")
    with pytest.raises(ParityError):
        config(repo_copy)


# --------------------------------------------------------------------------- long chains

def test_a_dependency_chain_longer_than_the_recursion_limit_is_walked() -> None:
    from parity import rules

    n = 5000
    services = {f"s{i:05d}": {"depends_on": [f"s{i + 1:05d}"] if i < n - 1 else []}
                for i in range(n)}
    assert validate._cycles(services) == []
    closure = rules.closure(services)
    assert len(closure["s00000"]) == n - 1 and closure[f"s{n - 1:05d}"] == set()
    services[f"s{n - 1:05d}"]["depends_on"] = ["s00000"]
    cycles = validate._cycles(services)
    assert len(cycles) == 1 and len(cycles[0]) == n + 1
    assert rules.closure(services)["s00003"] == set(services) - {"s00003"}


def test_cycles_are_reported_as_before() -> None:
    services = {"a": {"depends_on": ["b"]}, "b": {"depends_on": ["c", "a"]},
                "c": {"depends_on": ["c"]}, "d": {"depends_on": ["nope", "a"]}}
    assert validate._cycles(services) == [["c", "c"], ["a", "b", "a"]]


def test_a_long_chain_of_services_loads(repo_copy: Path) -> None:
    n = 1100
    lines = ["services:"]
    for i in range(n):
        lines += [f"  s{i:05d}:", "    phase: 1", "    image: x:1",
                  "    readiness: {tcp: {port: p}}", "    ports: [{name: p, port: 80}]"]
        if i < n - 1:
            lines.append(f"    depends_on: [s{i + 1:05d}]")
    (repo_copy / "base" / "chain.yaml").write_text("\n".join(lines) + "\n")
    with deadline(120):
        stack = model.load(repo_copy, Selection("compose", 1)).stack
    assert len(stack.order()) >= n  # one wave per link of the chain


def test_a_huge_integer_is_not_echoed(repo_copy: Path) -> None:
    text = refused(repo_copy, sets=["secrets.redis.keys.password.value=123456789012345678901234"])
    assert "123456789" not in text and "********" in text
    assert "an integer of 24 digits does not fit in 64 bits" in text


@pytest.mark.parametrize("value,message", [
    ("!!bool maybe", "'maybe' is not a YAML bool"),
    ("!!float x", "'x' is not a YAML float"),
    ("!!float", "'' is not a YAML float"),
    ("!!int 1.5", "'1.5' is not a YAML int"),
    ("!!int 0x", "'0x' is not a YAML int"),
])
def test_an_explicit_standard_tag_on_the_wrong_text_is_exit_2(value, message, repo_copy):
    """!!bool / !!int / !!float on text that is not one: exit 2 naming file:line, never
    the constructor's KeyError / ValueError / IndexError."""
    local = repo_copy / "overlays" / "local"
    local.mkdir(exist_ok=True)
    (local / "t.yaml").write_text(f"services:\n  api:\n    replicas: {value}\n")
    with pytest.raises(ParityError) as exc:
        cli.config(repo_copy, cli.selection("compose", 1))
    assert exc.value.exit_code == 2
    assert exc.value.render().splitlines()[0] == f"overlays/local/t.yaml:3: {message}"
