"""inv doctor: every prerequisite at once, on the real engine; nothing changes and
no kube context but parity's is ever contacted."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from foreign import ForeignAPI  # tests/foreign.py
from parity import cli
from parity.model import Selection

ROOT = Path(__file__).resolve().parent.parent


def _engine_up() -> bool:
    import subprocess

    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


needs_engine = pytest.mark.skipif(not _engine_up(), reason="needs a running Docker engine "
                                  "(CI installs one: .ci/install-docker.sh)")


@needs_engine
def test_compose_lane_checks_as_json(repo_copy: Path) -> None:
    text, code = cli.doctor(repo_copy, Selection("compose", 1, profile="offline"), True)
    data = json.loads(text)
    checks = {c["check"]: c for c in data["checks"]}
    assert list(checks) == ["python", "docker engine", "compose plugin", "disk", "host ports",
                            "data", "images", "local CA", "browser checks"]
    assert checks["docker engine"]["status"] == "ok"
    assert checks["compose plugin"]["detail"].startswith("Docker Compose 2.")
    assert checks["local CA"]["detail"].startswith("created by the first up")
    assert checks["browser checks"]["status"] in ("ok", "warn")  # optional: never a failure
    assert code == (0 if data["ready"] else 3)
    assert not (repo_copy / ".parity").exists()  # nothing written, not even the CA


@needs_engine
def test_a_taken_port_is_a_failure_with_the_message_up_would_print(repo_copy: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        sel = Selection("compose", 1, environ={"PARITY_HTTPS_PORT": str(port)})
        text, code = cli.doctor(repo_copy, sel, True)
    ports = [c for c in json.loads(text)["checks"] if c["check"] == "host ports"][0]
    assert code == 3
    assert ports["status"] == "fail"
    assert ports["detail"].startswith(f"127.0.0.1:{port} is in use by another process")
    assert ports["hint"] == f"stop that process, or run on another port: PARITY_HTTPS_PORT=" \
                            f"{port + 8000} inv up"


def test_without_the_engine_it_stops_after_saying_so(repo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(repo_copy))  # no docker CLI on this PATH
    text, code = cli.doctor(repo_copy, Selection("compose", 1), False)
    assert code == 3
    assert text.splitlines()[-1] == "1 missing"
    data = json.loads(cli.doctor(repo_copy, Selection("compose", 1), True)[0])
    assert [(c["check"], c["status"]) for c in data["checks"]] == [
        ("python", "ok"), ("docker engine", "fail")]
    assert data["checks"][1]["detail"] == "the docker CLI is not installed"
    assert data["ready"] is False


@needs_engine
def test_kind_lane_never_contacts_the_users_context(repo_copy: Path, tmp_path: Path,
                                                    monkeypatch) -> None:
    listener = ForeignAPI()
    cfg = tmp_path / "config"
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod-eu",
        "clusters": [{"name": "prod", "cluster": {"server": listener.url}}],
        "contexts": [{"name": "prod-eu", "context": {"cluster": "prod", "user": "me"}}],
        "users": [{"name": "me", "user": {"token": "t"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(cfg))
    try:
        text, code = cli.doctor(repo_copy, Selection("kind", 1), True)
    finally:
        listener.close()
    checks = {c["check"]: c for c in json.loads(text)["checks"]}
    assert listener.count == 0
    assert checks["kube context"]["detail"] == (
        "your current context 'prod-eu' is never used; parity talks only to "
        ".parity/kind/kubeconfig (context kind-parity-parity, on loopback)")
    assert {"kind", "privileged nodes", "node image", "edge controller", "kubectl",
            "docker memory", "image store"} <= set(checks)
    if shutil.which("kind") is None and shutil.which("go") is not None:
        assert checks["kind"] == {"check": "kind", "status": "ok", "hint": "",
                                  "detail": "kind v0.30.0 (built by the next step: Go found)"}
    elif shutil.which("kind") is None:
        assert code == 3 and checks["kind"]["status"] == "fail"
        assert checks["kind"]["detail"] == ("kind is not installed; the kind lane needs kind "
                                            "0.30.0 or newer")
    assert not (repo_copy / ".parity").exists()  # nothing built, nothing written


@pytest.mark.parametrize("image, registry", [
    ("postgres:16.4-bookworm", "registry-1.docker.io"),
    ("kindest/node:v1.34.0@sha256:" + "a" * 64, "registry-1.docker.io"),
    ("quay.io/keycloak/keycloak:26.0", "quay.io"),
    ("localhost:5000/team/api:1", "localhost:5000"),
    ("registry.internal/x", "registry.internal"),
])
def test_the_registry_an_image_is_pulled_from(image, registry) -> None:
    from parity.findings import registry_of

    assert registry_of(image) == registry


def test_an_unreachable_registry_is_a_failure_with_the_offline_fix() -> None:
    from parity.findings import pull_finding as _pull_finding

    f = _pull_finding("node image", ["kindest/node:v1"], "not here", "kind")
    # this machine reaches no container registry; elsewhere the same call warns
    if f.status == "fail":
        assert f.detail.startswith("not here; kind pulls kindest/node:v1 from "
                                   "registry-1.docker.io, which cannot be reached: ")
    else:
        assert f.status == "warn"
    assert "PROFILE=offline" in f.hint
    refused = _pull_finding("images", ["localhost:1/x:1", "localhost:1/y:1"], "0 of 2", "up")
    assert (refused.status, refused.detail.split(": ", 1)[0]) == (
        "fail", "0 of 2; up pulls localhost:1/x:1 and 1 more from localhost:1, which cannot "
                "be reached")


def test_the_privileged_probe_runs_as_root(monkeypatch) -> None:
    """A non-root USER gets no capabilities, so probing with such an image passed on
    machines where kind's root node then failed ('unable to apply caps')."""
    from types import SimpleNamespace

    from parity import docker

    calls = []

    def fake_run(argv, check=False, timeout=None):
        calls.append(argv)
        if argv[:3] == ["docker", "image", "ls"]:
            return SimpleNamespace(returncode=0, stdout="sha256:nonroot\n", stderr="")
        return SimpleNamespace(returncode=125, stdout="", stderr=(
            "docker: Error response from daemon: failed to create shim task: OCI runtime "
            "create failed: runc create failed: unable to start container process: unable "
            "to apply caps: operation not permitted: unknown"))

    monkeypatch.setattr(docker, "run", fake_run)
    assert docker.privileged_probe() == (
        False, "docker run --privileged fails: unable to apply caps: operation not permitted")
    probe = calls[1]
    assert probe[probe.index("--user") + 1] == "0:0"
