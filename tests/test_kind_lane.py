"""The kind lane without a kind cluster: the step plan from observed state, the
context guard, and the exit codes on a machine without kind.

kind cannot run on these machines (no node image can be fetched), so the guard
tests that need a `kind` on PATH use a stand-in shell script: it is a fake, and
only answers the two questions the driver asks before it would reach an API
(`kind version`, `kind get clusters`) and `kind export kubeconfig`."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from parity.errors import CheckFailed, InputError
from parity.lifecycle.kind import Kube, check_kubeconfig
from parity.lifecycle.kind import Action, Observed, plan

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: parity-parity\n"
IMAGES = ["parity/api:0.1.0", "parity/web:0.1.0"]


def actions(p: list[Action]) -> list[tuple[str, str]]:
    return [(a.step, a.action) for a in p]


# --------------------------------------------------------------------------- plan

def test_plan_no_cluster_creates_everything() -> None:
    p = plan(Observed(local_images={i: "sha256:1" for i in IMAGES}), CONFIG, IMAGES, False,
             "parity-parity")
    assert actions(p) == [("cluster", "create"), ("edge", "install"), ("images", "load"),
                          ("images", "load"), ("apply", "apply"), ("prune", "prune")]
    assert p[0].detail == "no kind cluster named parity-parity"


def test_plan_same_config_and_images_already_loaded_changes_nothing_but_apply() -> None:
    obs = Observed(cluster_exists=True, applied_config=CONFIG, edge_ready=True,
                   edge_digest="e1", node_image_id="sha256:n1",
                   node_images={i: "sha256:1" for i in IMAGES},
                   local_images={i: "sha256:1" for i in IMAGES})
    p = plan(obs, CONFIG, IMAGES, False, "parity-parity", "sha256:n1", "e1")
    assert actions(p) == [("cluster", "keep"), ("edge", "keep"), ("images", "skip"),
                          ("images", "skip"), ("apply", "apply"), ("prune", "prune")]
    assert p[2].detail == "parity/api:0.1.0: the node has sha256:1"


def test_plan_reloads_only_images_whose_build_changed() -> None:
    obs = Observed(cluster_exists=True, applied_config=CONFIG, edge_ready=True,
                   node_images={"parity/api:0.1.0": "sha256:old", "parity/web:0.1.0": "sha256:1"},
                   local_images={i: "sha256:1" for i in IMAGES})
    p = plan(obs, CONFIG, IMAGES, False, "parity-parity")
    assert [(a.target, a.action, a.detail) for a in p if a.step == "images"] == [
        ("parity/api:0.1.0", "load", "parity/api:0.1.0: the node has another build"),
        ("parity/web:0.1.0", "skip", "parity/web:0.1.0: the node has sha256:1")]


def test_plan_upgrades_the_edge_when_its_manifests_changed() -> None:
    obs = Observed(cluster_exists=True, applied_config=CONFIG, edge_ready=True,
                   edge_digest="e1")
    p = plan(obs, CONFIG, [], False, "parity-parity", None, "e2")
    assert actions(p)[:2] == [("cluster", "keep"), ("edge", "upgrade")]
    assert p[1].detail == "edge.yaml or the Gateway API CRDs changed"
    # a controller that is not ready is installed again, whatever its record says
    obs.edge_ready = False
    assert actions(plan(obs, CONFIG, [], False, "parity-parity", None, "e1"))[1] == (
        "edge", "install")


def test_plan_refuses_a_rebuilt_node_image_unless_recreate() -> None:
    obs = Observed(cluster_exists=True, applied_config=CONFIG, edge_ready=True,
                   edge_digest="e1", node_image_id="sha256:" + "a" * 64)
    with pytest.raises(InputError) as exc:
        plan(obs, CONFIG, [], False, "parity-parity", "sha256:" + "b" * 64, "e1")
    assert exc.value.render() == (
        "the cluster parity-parity runs another build of its node image (sha256:aaaaaaaaaaaa; "
        "the image is now sha256:bbbbbbbbbbbb); a node cannot change its image in place\n"
        "  next: recreate it (its data is lost): inv up --mode kind --recreate, or keep the "
        "old cluster by going back to the old image")
    p = plan(obs, CONFIG, [], True, "parity-parity", "sha256:" + "b" * 64, "e1")
    assert actions(p)[:2] == [("cluster", "recreate"), ("edge", "install")]
    assert p[0].detail == "the node image was rebuilt"
    # an unknown local ID (a pulled image not here) is no reason to recreate
    assert actions(plan(obs, CONFIG, [], False, "parity-parity", None, "e1"))[0] == (
        "cluster", "keep")


def test_plan_refuses_a_drifted_config_and_shows_what_changed() -> None:
    obs = Observed(cluster_exists=True, applied_config=CONFIG, edge_ready=True)
    drifted = CONFIG + "nodes:\n  - role: control-plane\n"
    with pytest.raises(InputError) as exc:
        plan(obs, drifted, [], False, "parity-parity")
    text = exc.value.render()
    assert text.startswith("the cluster parity-parity was created from another "
                           "kind-config.yaml; a kind cluster cannot change it in place:")
    assert "+nodes:\n" in text and "+  - role: control-plane" in text
    assert text.endswith("next: recreate it (its data is lost): inv up --mode kind --recreate")
    p = plan(obs, drifted, IMAGES, True, "parity-parity")
    assert actions(p)[:2] == [("cluster", "recreate"), ("edge", "install")]
    assert all(a.action == "load" for a in p if a.step == "images")  # a new node has none


def test_plan_after_a_partial_previous_run_keeps_the_cluster_and_finishes() -> None:
    """The cluster was created but the run stopped before the edge was ready and
    before images were loaded."""
    obs = Observed(cluster_exists=True, applied_config=CONFIG, edge_ready=False,
                   local_images={i: "sha256:1" for i in IMAGES})
    p = plan(obs, CONFIG, IMAGES, False, "parity-parity")
    assert actions(p) == [("cluster", "keep"), ("edge", "install"), ("images", "load"),
                          ("images", "load"), ("apply", "apply"), ("prune", "prune")]


def test_plan_refuses_to_adopt_a_cluster_it_did_not_create() -> None:
    with pytest.raises(InputError, match="exists, but parity has no record of creating it"):
        plan(Observed(cluster_exists=True), CONFIG, [], False, "parity-parity")


# --------------------------------------------------------------------------- guard

def kubeconfig(path: Path, context: str, server: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""apiVersion: v1
kind: Config
current-context: {context}
contexts:
  - name: {context}
    context: {{cluster: c, user: u}}
clusters:
  - name: c
    cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
users:
  - name: u
    user: {{token: t}}
""")
    return path


@pytest.fixture
def foreign_api():
    """A real listener on 127.0.0.1 standing in for someone else's API server;
    counts every connection it receives."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    count = {"n": 0}
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            count["n"] += 1
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.getsockname()[1]}", count
    stop.set()
    t.join()
    srv.close()


def test_guard_refuses_foreign_context_and_server(tmp_path, foreign_api) -> None:
    server, count = foreign_api
    foreign = kubeconfig(tmp_path / "a", "prod-admin", server)
    with pytest.raises(InputError) as exc:
        Kube(foreign, "parity-parity")
    assert exc.value.render().startswith(f"{foreign}:3: refusing to use context 'prod-admin': "
                                         "parity only talks to its own kind cluster, context "
                                         "'kind-parity-parity'")
    remote = kubeconfig(tmp_path / "b", "kind-parity-parity", "https://10.1.2.3:6443")
    with pytest.raises(InputError, match="refusing to reach https://10.1.2.3:6443"):
        check_kubeconfig(remote, "parity-parity")
    assert count["n"] == 0


def _inv(args, env, root):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=root, text=True,
                          capture_output=True, env=env, timeout=300)


@pytest.fixture
def clone(tmp_path) -> Path:
    """A copy of the repository to run inv in, so nothing lands in the real .parity/."""
    import shutil

    dst = tmp_path / "clone"
    dst.mkdir()
    for name in ("base", "overlays", "images", "checks", "src", "apps"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns(
            "local", "__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "tasks.py", dst / "tasks.py")
    return dst


def _fake_kind_saying_the_cluster_exists(tmp_path: Path) -> Path:
    """A stand-in `kind` (fake: see the module docstring) on a bin dir of its own,
    answering that the parity cluster exists and refusing anything else."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "kind"
    fake.write_text("#!/bin/sh\ncase \"$1 $2\" in\n"
                    "  'version '*) echo 'kind v0.30.0 go1.24 linux/amd64';;\n"
                    "  'get clusters') echo parity-parity;;\n"
                    "  *) echo \"fake kind: $*\" >&2; exit 1;;\nesac\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return bindir


def _foreign_env(tmp_path: Path, server: str, path_prefix: str | None = None) -> dict:
    home = tmp_path / "home"
    cfg = kubeconfig(home / ".kube" / "config", "prod-admin", server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARITY_")}
    env.update(HOME=str(home), KUBECONFIG=str(cfg))
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    return env


def _path_without_kind_and_go(tmp_path: Path) -> str:
    """A PATH with the docker CLI and nothing else (no kind, no Go to build one)."""
    import shutil

    bindir = tmp_path / "docker-only"
    bindir.mkdir()
    (bindir / "docker").symlink_to(shutil.which("docker"))
    return str(bindir)


def test_without_kind_every_command_stays_away_from_any_api(tmp_path, foreign_api,
                                                            clone) -> None:
    """No kind and no Go to build the pinned one: up exits 3 with both fixes; status,
    down and reset make no connection to the foreign (current) context."""
    server, count = foreign_api
    env = _foreign_env(tmp_path, server)
    env["PATH"] = _path_without_kind_and_go(tmp_path)
    up = _inv(["up", "--mode", "kind"], env, clone)
    assert up.returncode == 3, up.stderr
    assert "error: kind is not installed; the kind lane needs kind 0.30.0 or newer" in up.stderr
    assert ("next: install Go (https://go.dev/doc/install) and parity builds the pinned kind "
            "v0.30.0 itself on the next up, or: go install sigs.k8s.io/kind@v0.30.0") \
        in up.stderr
    status = _inv(["status", "--mode", "kind", "--json"], env, clone)
    assert status.returncode == 1 and '"reason": "no cluster parity-parity"' in status.stdout
    down = _inv(["down", "--mode", "kind"], env, clone)
    assert (down.returncode, down.stdout.strip()) == (0, "removed nothing (no cluster)")
    reset = _inv(["reset", "--mode", "kind"], env, clone)
    assert reset.returncode == 3
    assert count["n"] == 0


def test_with_a_foreign_kubeconfig_in_parity_place_nothing_connects(tmp_path, foreign_api,
                                                                    clone):
    """A stand-in `kind` (fake: see the module docstring) says the parity cluster
    exists; parity's own kubeconfig was replaced by one whose context is foreign.
    Every command must refuse before any connection."""
    server, count = foreign_api
    bindir = _fake_kind_saying_the_cluster_exists(tmp_path)
    env = _foreign_env(tmp_path, server, str(bindir))
    kubeconfig(clone / ".parity" / "kind" / "kubeconfig", "prod-admin", server)
    for args in (["status", "--mode", "kind"], ["down", "--mode", "kind"]):
        proc = _inv(args, env, clone)
        assert proc.returncode == 2, proc.stderr
        assert "refusing to use context 'prod-admin'" in proc.stderr
    assert count["n"] == 0


def test_each_workload_waits_as_long_as_its_readiness_allows() -> None:
    from parity import model
    from parity.model import Selection
    from parity.lifecycle import UI
    from parity.lifecycle.kind import KindLane

    lane = KindLane(ROOT, model.load(ROOT, Selection("kind", 3)), UI(quiet=True), timeout=900)
    assert lane.deadline_for("api") == 0 + 5 * 30 + 180          # period x threshold + start
    assert lane.deadline_for("keycloak") == 0 + 5 * 60 + 180     # its threshold is 60
    assert lane.deadline_for("bootstrap-artifacts") == 300       # the job's completion timeout
    short = KindLane(ROOT, model.load(ROOT, Selection("kind", 3)), UI(quiet=True), timeout=100)
    assert short.deadline_for("keycloak") == 100                 # never beyond --timeout


def _home_tree(home: Path) -> dict:
    return {str(p.relative_to(home)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in [home, *home.rglob("*")]}


def test_a_stopped_cluster_is_exit_3_with_the_next_step_and_no_traceback(tmp_path, clone):
    """A stand-in `kind` (fake: see the module docstring) says the parity cluster
    exists, and parity's kubeconfig names a loopback port nothing listens on (a
    stopped cluster): every command ends in exit 3 naming the server and what to do,
    at once, never a urllib3 traceback; nothing is written under HOME (~/.kube)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = _fake_kind_saying_the_cluster_exists(tmp_path)
    env = _foreign_env(tmp_path, "https://127.0.0.1:9", str(bindir))
    own = clone / ".parity" / "kind" / "kubeconfig"
    kubeconfig(own, "kind-parity-parity", f"https://127.0.0.1:{port}")
    home = Path(env["HOME"])
    before = _home_tree(home)
    server = f"https://127.0.0.1:{port}"
    for args in (["status", "--mode", "kind"], ["down", "--mode", "kind"],
                 ["down", "--mode", "kind", "--dry-run"]):
        proc = _inv(args, env, clone)
        assert proc.returncode == 3, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "urllib3" not in proc.stderr
        assert (f"error: the parity cluster's API server {server} (from {own}) does not "
                "answer: connection refused\n  next: is the cluster running?") in proc.stderr
    assert _home_tree(home) == before
    assert not (home / ".kube" / "cache").exists()


# --------------------------------------------------------------------------- wait_served

class _ScriptedEdge:
    """A local HTTP server standing in for the edge (a real socket, real HTTP): it
    answers each request with the next (status, body) of its script, then 200."""

    def __init__(self, script):
        import http.server
        import threading

        answers = list(script)
        self.asked = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                outer.asked += 1
                status, body = answers.pop(0) if answers else (200, "app")
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _edge_waiter(tmp_path, port):
    from types import SimpleNamespace

    from parity.lifecycle.kind.edge import KindEdge

    waiter = KindEdge.__new__(KindEdge)
    waiter.stack = SimpleNamespace(http_port=port, https_port=port)
    waiter.state = tmp_path
    waiter.node_containers = lambda: ["parity-parity-control-plane"]
    waiter.endpoints = lambda: [{"route": "app", "url": "http://app.parity.localhost/"}]
    return waiter


class _Status:
    def update(self, text):
        pass


NO_SERVER = (503, "no available server")


def test_wait_served_returns_at_once_when_the_edge_serves_every_route(tmp_path):
    edge = _ScriptedEdge([])
    try:
        waiter = _edge_waiter(tmp_path, edge.port)
        assert waiter.wait_served(time.monotonic() + 30, _Status()) == "every route served"
        assert edge.asked == 1   # a steady edge costs one round
    finally:
        edge.close()


def test_wait_served_after_a_wait_wants_every_route_served_rounds_in_a_row(tmp_path):
    from parity.lifecycle.kind.edge import SERVED_ROUNDS

    # not served, served, taken away again (a later apply), then served for good
    edge = _ScriptedEdge([NO_SERVER, (200, "app"), NO_SERVER])
    try:
        waiter = _edge_waiter(tmp_path, edge.port)
        assert waiter.wait_served(time.monotonic() + 60, _Status()) == "every route served"
        assert edge.asked == 3 + SERVED_ROUNDS
    finally:
        edge.close()


def test_wait_served_names_the_route_and_its_last_answer_at_the_deadline(tmp_path):
    edge = _ScriptedEdge([NO_SERVER] * 50)
    try:
        waiter = _edge_waiter(tmp_path, edge.port)
        waiter.kubeconfig = tmp_path / ".parity" / "kind" / "kubeconfig"
        waiter.root = tmp_path
        waiter.stack.namespace = "parity"
        with pytest.raises(CheckFailed) as exc:
            waiter.wait_served(time.monotonic() + 1.5, _Status())
        assert exc.value.message == ("edge: routes accepted but not served: app "
                                     "(http://app.parity.localhost/): 503 no available server")
    finally:
        edge.close()
