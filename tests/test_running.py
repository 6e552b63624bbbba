"""The running selection (parity.running) and what down keeps (decision 0016), without
an engine: a fake docker records what the compose lane asks for."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from parity import cli, docker, running
from parity.model import Selection

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the record

def test_no_record_keeps_the_old_defaults(tmp_path):
    assert running.resolve(tmp_path, None, None, None, None, environ={}) == \
        ("compose", 1, None, (), "")


def test_up_records_and_every_later_command_defaults_to_it(tmp_path):
    running.record(tmp_path, Selection("compose", 3, "offline", ("services.api.replicas=2",)))
    data = json.loads((tmp_path / ".parity" / "running.json").read_text())
    assert data == {"compose": {"phase": 3, "profile": "offline",
                                "sets": ["services.api.replicas=2"]}}
    # `make up PHASE=3` then plain `make validate`: phase 3, profile offline, same --set
    assert running.resolve(tmp_path, None, None, None, None, environ={}) == \
        ("compose", 3, "offline", ("services.api.replicas=2",), "")


def test_up_does_not_reapply_a_one_off_set(tmp_path):
    running.record(tmp_path, Selection("compose", 3, "offline", ("services.api.replicas=2",)))
    mode, phase, profile, sets, note = running.resolve(tmp_path, None, None, None, None,
                                                       environ={}, command="up")
    assert (phase, profile, sets) == (3, "offline", ())
    assert note == ("note: the running compose environment was brought up with --set "
                    "services.api.replicas=2; this up applies none")


def test_the_only_running_lane_is_the_default_mode(tmp_path):
    running.record(tmp_path, Selection("kind", 2, "offline"))
    assert running.resolve(tmp_path, None, None, None, None, environ={})[:3] == \
        ("kind", 2, "offline")
    running.record(tmp_path, Selection("compose", 1))
    # two lanes recorded: the mode is not guessed
    assert running.resolve(tmp_path, None, None, None, None, environ={})[:3] == \
        ("compose", 1, "default")


def test_an_explicit_value_that_differs_is_said(tmp_path):
    running.record(tmp_path, Selection("compose", 3, "offline"))
    mode, phase, profile, sets, note = running.resolve(tmp_path, None, "1", None, None,
                                                       environ={}, command="status")
    assert (mode, phase, profile) == ("compose", "1", "offline")
    assert note == ("note: the running compose environment is phase 3, profile offline "
                    "(recorded by inv up); this shows what you asked for: phase 1")
    # the same value given explicitly: nothing to say
    assert running.resolve(tmp_path, None, "3", "offline", None, environ={})[4] == ""
    # PARITY_IMAGE_PROFILE is an explicit choice too
    note = running.resolve(tmp_path, None, None, None, None,
                           environ={"PARITY_IMAGE_PROFILE": "default"}, command="up")[4]
    assert note.endswith("this up changes it to profile default")


def test_down_clears_the_record_and_a_broken_record_is_no_record(tmp_path):
    running.record(tmp_path, Selection("compose", 2))
    running.record(tmp_path, Selection("kind", 3))
    running.clear(tmp_path, "compose")
    assert set(running.read(tmp_path)) == {"kind"}
    running.clear(tmp_path, "kind")
    assert not (tmp_path / ".parity" / "running.json").exists()
    (tmp_path / ".parity").mkdir(exist_ok=True)
    (tmp_path / ".parity" / "running.json").write_text("{not json")
    assert running.read(tmp_path) == {}


# --------------------------------------------------------------------------- Makefile

@pytest.mark.parametrize("target", ["status", "validate", "down", "reset", "up", "doctor"])
def test_make_passes_only_the_flags_the_user_set(target):
    """`make validate` after `make up PHASE=3` must not force phase 1 on inv."""
    out = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT,
                         capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if " inv " in f" {x} " or "/inv " in x)
    assert "--phase" not in line and "--mode" not in line and "--profile" not in line, line
    out = subprocess.run(["make", "-n", "--no-print-directory", target, "PHASE=3",
                          "MODE=kind", "PROFILE=offline"], cwd=ROOT, capture_output=True,
                         text=True).stdout
    assert "--phase 3" in out and "--mode kind" in out and "--profile offline" in out, out


def test_make_down_volumes_and_reset_delete_the_data():
    out = subprocess.run(["make", "-n", "--no-print-directory", "down", "VOLUMES=1"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    assert "down --volumes" in out, out
    out = subprocess.run(["make", "-n", "--no-print-directory", "down-volumes"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    assert "down --volumes" in out, out


# --------------------------------------------------------------------------- compose down

class FakeDocker:
    """Just enough of the engine for ComposeLane.down and check_data."""

    def __init__(self, image="parity-offline/postgres:15-bookworm"):
        labels = {"parity.dev/managed": "true", "parity.dev/stack": "parity",
                  "com.docker.compose.project": "parity"}
        self.containers = [{"ID": "c1", "Names": "parity-postgres-1",
                            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
                            # what docker ps shows once a rebuild moved the tag
                            "Image": "sha256:" + "ab" * 32}]
        self.inspected = [{"Id": "c1", "Image": "sha256:" + "ab" * 32,
                           "Config": {"Image": image, "Labels": {
                               **labels, "parity.dev/service": "postgres"}}}]
        self.volumes = [{"Name": "parity_postgres-data", "Labels": ",".join(
            f"{k}={v}" for k, v in labels.items())}]
        self.networks = [{"Name": "parity_default", "Labels": self.volumes[0]["Labels"]}]
        self.calls: list[list[str]] = []

    def install(self, monkeypatch):
        monkeypatch.setattr(docker, "engine_ok", lambda: None)
        monkeypatch.setattr(docker, "labelled", self.labelled)
        monkeypatch.setattr(docker, "inspect", lambda ids: [i for i in self.inspected
                                                            if i["Id"] in ids])
        monkeypatch.setattr(docker, "run", self.run)

    def labelled(self, kind, labels):
        rows = {"container": self.containers, "volume": self.volumes,
                "network": self.networks}[kind]
        return [r for r in rows if all(f"{k}={v}" in r["Labels"] for k, v in labels.items())]

    def run(self, args, **_):
        self.calls.append(args)
        if args[:3] == ["docker", "rm", "-f"]:
            self.containers = []
        if args[:3] == ["docker", "volume", "rm"]:
            self.volumes = []
        return subprocess.CompletedProcess(args, 0, "", "")


def _lane(root, profile="offline", phase=1):
    return cli.lane(root, Selection("compose", phase, profile), quiet=True)


@pytest.fixture
def checkout(tmp_path, repo_copy):
    return repo_copy


def test_compose_down_keeps_the_data_volumes_and_says_so(checkout, monkeypatch):
    fake = FakeDocker()
    fake.install(monkeypatch)
    text = _lane(checkout).down()
    assert text == ("removed 1 containers, 1 networks\n"
                    "kept 1 data volume: parity_postgres-data; `inv reset` or "
                    "`inv down --volumes` removes them")
    assert not any(c[:3] == ["docker", "volume", "rm"] for c in fake.calls)
    assert fake.volumes


def test_compose_down_volumes_removes_them(checkout, monkeypatch):
    fake = FakeDocker()
    fake.install(monkeypatch)
    text = _lane(checkout).down(volumes=True)
    assert text == "removed 1 containers, 1 volumes, 1 networks"
    assert ["docker", "volume", "rm", "-f", "parity_postgres-data"] in fake.calls


def test_compose_dry_run_names_what_down_keeps(checkout, monkeypatch):
    FakeDocker().install(monkeypatch)
    plan = _lane(checkout).down(dry_run=True)
    assert plan.endswith("would keep 1 data volume: parity_postgres-data; `inv reset` or "
                         "`inv down --volumes` removes them"), plan
    assert "1 volume:" not in plan.splitlines()[1]


def test_kept_data_is_still_guarded_against_another_image(checkout, monkeypatch):
    """down removes the containers that recorded who wrote the data: the next up
    with another profile must still refuse, from what down remembered."""
    fake = FakeDocker()
    fake.install(monkeypatch)
    running.record(checkout, Selection("compose", 1, "offline"))
    _lane(checkout).down()
    from parity.errors import InputError

    with pytest.raises(InputError) as info:
        _lane(checkout, profile="default").check_data()
    assert "was written by parity-offline/postgres:15-bookworm" in str(info.value)
    assert "--profile offline" in info.value.hint
    assert ("docker run --rm -v parity_postgres-data:/data:ro -v \"$PWD\":/backup "
            "--entrypoint tar parity-offline/postgres:15-bookworm czf "
            "/backup/parity_postgres-data.tgz -C /data .") in info.value.hint
    _lane(checkout, profile="offline").check_data()  # the same image: fine


def test_a_rebuilt_image_is_not_another_repository(checkout, monkeypatch):
    """`inv images --force` while the stack runs: docker ps shows the old ID; the
    check compares the reference the container was created from."""
    FakeDocker().install(monkeypatch)
    _lane(checkout).check_data()


# --------------------------------------------------------------------------- kind data (0016)

class FakeKube:
    def __init__(self):
        self.applied: list[dict] = []

    def get(self, api_version, kind, name, namespace=None):
        return next((d for d in self.applied if d["kind"] == kind
                     and d["metadata"]["name"] == name), None)

    def list(self, api_version, kind, namespace=None, selector=None):
        if kind == "StorageClass":
            return [{"metadata": {"name": "standard", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}}}]
        return []

    def apply(self, doc):
        self.applied.append(doc)


def test_kind_pre_binds_a_volume_per_claim_to_a_directory_that_outlives_the_cluster(
        checkout):
    from parity.render.kind import KIND_DATA_HOST_DIR

    lane = cli.lane(checkout, Selection("kind", 3, "offline"), quiet=True)
    lane.render()
    lane._kube = FakeKube()
    assert lane.ensure_data_volumes() == 5
    pvs = {d["metadata"]["name"]: d for d in lane._kube.applied}
    pv = pvs["parity-parity-data-postgres-0"]
    assert pv["spec"]["claimRef"] == {"namespace": "parity", "name": "data-postgres-0"}
    assert pv["spec"]["hostPath"] == {"path": "/var/local-path-provisioner/parity_data-postgres-0",
                                      "type": "DirectoryOrCreate"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["storageClassName"] == "standard"
    assert (checkout / KIND_DATA_HOST_DIR / "parity_data-postgres-0").is_dir()
    assert lane.ensure_data_volumes() == 0  # the next up changes nothing
    config = lane.files["kind-config.yaml"]
    assert "hostPath: .parity/data/kind" in config
    assert "containerPath: /var/local-path-provisioner" in config


def test_kind_refuses_kept_data_of_another_image_after_down(checkout):
    """The cluster (and its StatefulSets, the record) is gone; the data and what
    down remembered are not."""
    from parity.datacompat import Written, remember
    from parity.errors import InputError

    lane = cli.lane(checkout, Selection("kind", 1, "default"), quiet=True)
    lane.render()
    (lane.data_dir / "parity_data-postgres-0").mkdir(parents=True)
    remember(checkout / ".parity", "kind", [Written(
        "postgres", "parity_data-postgres-0", "parity-offline/postgres:15-bookworm")])
    lane.actions = [type("A", (), {"step": "cluster", "action": "create"})()]
    with pytest.raises(InputError) as info:
        lane.check_data()
    assert "the data in parity_data-postgres-0 was written by " \
           "parity-offline/postgres:15-bookworm" in str(info.value)
