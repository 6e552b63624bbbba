"""Environment identity (decision 0015): an environment belongs to one checkout.

The compose tests create small throwaway containers (``docker create``, from an
empty image imported here, never started) in a Compose project of a unique name;
they never bring a stack up. The kind tests feed the driver the cluster's record.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from parity import checkout, cli
from parity.errors import InputError

EMPTY_IMAGE = "parity-test/empty:1"


# --------------------------------------------------------------------------- the identity

def test_a_checkout_gets_an_id_once_and_keeps_it(tmp_path) -> None:
    first = checkout.identity(tmp_path)
    assert first.path == str(tmp_path.resolve()) and len(first.id) == 16
    assert checkout.identity(tmp_path) == first
    assert json.loads((tmp_path / ".parity" / "checkout.json").read_text()) == {
        "id": first.id, "path": first.path}


def test_a_copied_checkout_is_another_checkout_a_moved_one_the_same(tmp_path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    original = checkout.identity(a)
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    assert checkout.identity(copy).id != original.id       # a has not gone anywhere
    moved = tmp_path / "moved"
    a.rename(moved)
    assert checkout.identity(moved) == checkout.Checkout(original.id, str(moved.resolve()))


# --------------------------------------------------------------------------- compose

def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def empty_image():
    if shutil.which("docker") is None or _docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine: run bash .ci/install-docker.sh (or deselect with "
                    "-m 'not engine')")
    if _docker("image", "inspect", EMPTY_IMAGE, check=False).returncode != 0:
        tar = subprocess.run(["tar", "-cf", "-", "--files-from", "/dev/null"],
                             capture_output=True, check=True).stdout
        subprocess.run(["docker", "import", "-", EMPTY_IMAGE], input=tar,
                       capture_output=True, check=True)
    return EMPTY_IMAGE


@pytest.fixture
def project(repo_copy, empty_image):
    """(lane, create) for a stack of a unique name: ``create(name, **labels)`` makes a
    container in its Compose project; all are removed afterwards."""
    name = f"ptest-{uuid.uuid4().hex[:10]}"
    lane = cli.lane(repo_copy, cli.selection("compose", 1, sets=[f"stack.name={name}"]),
                    quiet=True)
    made = []

    def create(container: str, labels: dict | None = None) -> None:
        argv = ["create", "--name", f"{name}-{container}",
                "--label", f"com.docker.compose.project={name}"]
        for k, v in (labels or {}).items():
            argv += ["--label", f"{k}={v}"]
        _docker(*argv, empty_image, "/true")
        made.append(f"{name}-{container}")

    yield lane, create, name
    if made:
        _docker("rm", "-f", *made, check=False)


MANAGED = "parity.dev/managed"
STACK = "parity.dev/stack"


@pytest.mark.engine
def test_up_refuses_a_container_parity_did_not_create_before_changing_anything(project):
    lane, create, name = project
    create("stranger")
    with pytest.raises(InputError) as up:
        lane.prerequisites()                   # the first step of up
    with pytest.raises(InputError) as down:
        lane.down(dry_run=True)
    assert up.value.render() == down.value.render() == (
        f"the Compose project '{name}' has containers parity did not create: "
        f"{name}-stranger\n  next: parity leaves them alone; remove them yourself or "
        "rename that project")
    assert not lane.out.exists() and not lane.identity_file.exists()  # nothing rendered


@pytest.mark.engine
def test_up_refuses_parity_labelled_containers_without_this_checkouts_identity(project):
    lane, create, name = project
    create("edge", {MANAGED: "true", STACK: name})
    with pytest.raises(InputError) as up:
        lane.prerequisites()
    assert up.value.render().startswith(
        f"the Compose project '{name}' has containers that do not carry this checkout's "
        f"identity: {name}-edge\n  next: parity marks every container it starts with its "
        f"checkout (decision 0015). If an older parity in this checkout started them: "
        f"docker rm -f {name}-edge (their volumes and data stay), then inv up.")
    assert "--set stack.name=" in up.value.hint


@pytest.mark.engine
def test_up_and_down_refuse_another_checkouts_environment(project, tmp_path):
    lane, create, name = project
    other = tmp_path / "other-checkout"
    other.mkdir()
    create("api", {MANAGED: "true", STACK: name, checkout.LABEL_CHECKOUT: "0123456789abcdef",
                   checkout.LABEL_CHECKOUT_PATH: str(other)})
    for run, command in ((lane.prerequisites, "up"), (lambda: lane.down(dry_run=True), "down")):
        with pytest.raises(InputError) as err:
            run()
        assert err.value.exit_code == 2
        assert err.value.render() == (
            f"the Compose project '{name}' belongs to another checkout of this repository: "
            f"{other} ({name}-api); inv {command} here would change or remove that "
            f"checkout's environment\n  next: run the command in that checkout (cd {other}), "
            "or give this checkout its own environment: another stack name, e.g. inv up "
            "--set stack.name=parity2, or for good in overlays/local/name.yaml: "
            "'stack: {name: parity2}'")


@pytest.mark.engine
def test_this_checkouts_own_containers_pass(project):
    lane, create, name = project
    me = checkout.identity(lane.root)
    create("api", {MANAGED: "true", STACK: name, checkout.LABEL_CHECKOUT: me.id,
                   checkout.LABEL_CHECKOUT_PATH: me.path})
    lane.check_owner("up")
    lane.check_owner("down")


def test_up_labels_every_container_with_the_checkout(repo_copy) -> None:
    lane = cli.lane(repo_copy, cli.selection("compose", 3), quiet=True)
    lane.render()
    override = json.loads(lane.identity_file.read_text())
    me = checkout.identity(repo_copy)
    assert set(override["services"]) == set(lane.stack.services)
    assert all(s == {"labels": {"parity.dev/checkout": me.id,
                                "parity.dev/checkout-path": me.path}}
               for s in override["services"].values())
    calls = []
    from parity import docker

    original = docker.run
    docker.run = lambda argv, **kw: calls.append(argv)
    try:
        lane.compose("ps")
    finally:
        docker.run = original
    assert calls[0][:7] == ["docker", "compose", "-p", lane.project, "-f", str(lane.file),
                            "-f"] and calls[0][7] == str(lane.identity_file)


# --------------------------------------------------------------------------- kind

class _Kube:
    def __init__(self, record):
        self.record = record
        self.applied = []

    def get(self, api, kind, name, ns=None):
        return self.record if (kind, name) == ("ConfigMap", "parity-cluster") else None

    def apply(self, doc):
        self.applied.append(doc)


def _kind_lane(root: Path, record: dict | None, monkeypatch):
    from parity.lifecycle.kind import KindLane

    lane = cli.lane(root, cli.selection("kind", 1), quiet=True)
    lane._kube = _Kube(record)
    lane.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    lane.kubeconfig.write_text("")
    monkeypatch.setattr(KindLane, "cluster_exists", lambda self: True)
    monkeypatch.setattr(KindLane, "kind", lambda self, *a, **k: pytest.fail(f"kind {a}"))
    for name in ("running_node_image", "_controller_available", "node_images",
                 "data_images", "local_images"):
        monkeypatch.setattr(KindLane, name, lambda self: {})
    return lane


def test_kind_up_and_down_refuse_another_checkouts_cluster(repo_copy, monkeypatch) -> None:
    lane = _kind_lane(repo_copy, {"data": {"kind-config.yaml": "x",
                                           "checkout-id": "0123456789abcdef",
                                           "checkout-path": "/srv/other"}}, monkeypatch)
    for run, command in ((lane.observe, "up"), (lambda: lane.down(dry_run=True), "down")):
        with pytest.raises(InputError) as err:
            run()
        assert err.value.render().startswith(
            "the kind cluster parity-parity belongs to another checkout of this repository: "
            f"/srv/other (that directory no longer exists); inv {command} --mode kind here "
            "would change or remove that checkout's environment\n  next: run the command in "
            "that checkout (cd /srv/other), or give this checkout its own environment: "
            "another stack name, e.g. inv up --mode kind --set stack.name=parity2")


def test_kind_takes_a_cluster_of_an_older_parity_and_records_itself(repo_copy,
                                                                   monkeypatch) -> None:
    lane = _kind_lane(repo_copy, {"data": {"kind-config.yaml": "x"}}, monkeypatch)
    lane.observe()
    lane.files = {"kind-config.yaml": "x"}
    lane.actions = []                                   # the plan says: keep
    assert lane.ensure_cluster() == "kept"
    (record,) = lane._kube.applied
    me = checkout.identity(repo_copy)
    assert record["data"]["checkout-id"] == me.id
    assert record["data"]["checkout-path"] == me.path
    # and from then on it is this checkout's: the same lane passes, another refuses
    lane.check_owner(record["data"], "up")


# --------------------------------------------------------------------------- images

@pytest.mark.engine
def test_a_rebuild_of_an_image_another_checkouts_environment_runs_is_refused(
        tmp_path, empty_image) -> None:
    """Image tags come from the model, so two checkouts build under the same tags:
    a rebuild would replace the image the other checkout's containers run."""
    from types import SimpleNamespace

    from parity.model import Build

    tag = f"parity-test/shared-{uuid.uuid4().hex[:8]}:1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (ctx / "a").write_text("a\n")
    stack = SimpleNamespace(services={"api": SimpleNamespace(
        name="api", image=tag, build=Build("ctx", None, None, ()))})
    other = tmp_path / "other"
    container = f"ptest-{uuid.uuid4().hex[:10]}-api"
    try:
        subprocess.run(["docker", "import", "--change", "LABEL parity.dev/inputs-hash=old",
                        "--change", "LABEL parity.dev/managed=true", "-", tag],
                       input=subprocess.run(["tar", "-cf", "-", "--files-from", "/dev/null"],
                                            capture_output=True).stdout,
                       capture_output=True, check=True)
        _docker("create", "--name", container, "--label",
                f"{checkout.LABEL_CHECKOUT}=0123456789abcdef", "--label",
                f"{checkout.LABEL_CHECKOUT_PATH}={other}", tag, "/true")
        with pytest.raises(InputError) as err:
            checkout.refuse_shared_images(stack, tmp_path, "inv up")
        assert err.value.render() == (
            f"inv up would rebuild {tag} under the same tag, and the environment of another "
            f"checkout runs it: {other} ({container}); its next up would rebuild it again, "
            "and each would replace the other's build\n"
            f"  next: run inv up in that checkout (cd {other}), or stop that environment "
            "there first (inv down), or give this checkout's images their own names (e.g. "
            "services.<name>.image in overlays/local/)")
        # the same container in this checkout's environment: nothing to refuse
        _docker("rm", "-f", container)
        me = checkout.identity(tmp_path)
        _docker("create", "--name", container, "--label", f"{checkout.LABEL_CHECKOUT}={me.id}",
                tag, "/true")
        checkout.refuse_shared_images(stack, tmp_path, "inv up")
    finally:
        _docker("rm", "-f", container, check=False)
        _docker("image", "rm", "-f", tag, check=False)
