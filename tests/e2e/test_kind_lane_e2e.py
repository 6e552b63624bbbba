"""The kind lane end to end on a real kind cluster (``nox -s e2e_kind``, part of
``make test``), with the offline image profile: no container registry anywhere.

    up phase 1 -> validate -> up phase 3 -> validate -> a no-op up (no pod restarted,
    no Job rerun) -> status (table and --json) -> Postgres data survives deleting
    its pod and deleting the cluster (down, up: decision 0016) -> reset -> validate
    (data gone) -> down --volumes

After down: no cluster, no node container, ``.parity/kind`` gone, nothing written
under ``~/.kube``, and a container, volume and network parity did not create still
there.

Where this machine's Docker cannot run ``--privileged`` (decision 0010), the test
puts the documented shim (testbin/docker-shim) first on PATH for its ``inv`` calls
and says so in its output: the product never applies it by itself. Only a machine
with no Docker engine skips (nox says so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e_kind

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
CLUSTER = "parity-parity"
SENTINEL = "parity-e2e-kind-sentinel"   # objects parity did not create
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("PARITY_")},
       "PARITY_IMAGE_PROFILE": "offline"}


def inv(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=ENV,
                          text=True, capture_output=True, timeout=3600)
    sys.stdout.write(f"\n$ inv {' '.join(args)}  (exit {proc.returncode}, "
                     f"{time.monotonic() - started:.0f}s)\n{proc.stdout}"
                     f"{proc.stderr[-6000:]}")
    sys.stdout.flush()
    if check and proc.returncode != 0:
        pytest.fail(f"inv {' '.join(args)} exited {proc.returncode}")
    return proc


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], text=True, capture_output=True, timeout=300)


def kube_home() -> dict[str, float]:
    """Every file under ~/.kube with its mtime (empty when there is none)."""
    home = Path.home() / ".kube"
    if not home.exists():
        return {}
    return {str(p): p.stat().st_mtime for p in home.rglob("*")}


@pytest.fixture(scope="module")
def lane():
    """Docker able to run kind's nodes (through the shim where it must), sentinels
    parity must not touch, and a clean slate; down at the end whatever happened."""
    from parity import docker as pdocker

    ok, detail = pdocker.privileged_probe()
    if ok is False:
        shim = ROOT / "testbin" / "docker-shim"
        ENV["PATH"] = f"{shim}{os.pathsep}{ENV.get('PATH', '')}"
        print(f"\ne2e_kind: this machine's Docker cannot run --privileged ({detail}); kind "
              f"runs through {shim.relative_to(ROOT)}/docker for this test, as "
              "docs/runbook-kind.md documents (decision 0010). The product never applies "
              "it on its own.")
    docker("volume", "create", SENTINEL)
    docker("network", "create", SENTINEL)
    image = docker("image", "ls", "-q").stdout.split()[0]
    docker("create", "--name", SENTINEL, "--network", SENTINEL, "-v", f"{SENTINEL}:/data",
           "--label", f"io.x-k8s.kind.cluster={CLUSTER}-not-ours", image, "true")
    inv("down", "--mode", "kind", "--volumes")
    before = kube_home()
    network_before = docker("network", "inspect", "kind").returncode == 0
    yield before, network_before
    inv("down", "--mode", "kind", "--volumes", check=False)
    docker("rm", "-f", SENTINEL)
    docker("volume", "rm", SENTINEL)
    docker("network", "rm", SENTINEL)


def validate(phase: int, browser: bool = True) -> dict:
    data = json.loads(inv("validate", "--mode", "kind", "--phase", str(phase), "--json",
                          *(["--browser"] if browser else [])).stdout)
    failed = [r for r in data["results"] if r["status"] == "fail"]
    assert data["passed"] and not failed, failed
    return data


def pods() -> dict[str, tuple]:
    """Every pod of the stack and the edge: uid and restart counts."""
    from parity import cli

    driver = cli.lane(ROOT, cli.selection("kind", 3, "offline"), quiet=True)
    out = {}
    for ns in ("parity", "parity-system"):
        for pod in driver.kube.list("v1", "Pod", ns):
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            out[f"{ns}/{pod['metadata']['name']}"] = (
                pod["metadata"]["uid"], tuple(c.get("restartCount", 0) for c in statuses))
    return out


def psql(sql: str) -> str:
    from parity import cli

    driver = cli.lane(ROOT, cli.selection("kind", 3, "offline"), quiet=True)
    r = driver.exec("postgres", ["sh", "-c", f'psql -U "$POSTGRES_USER" -d postgres -tAc "{sql}"'])
    assert r.code == 0, r.stderr
    return r.stdout.strip()


def test_kind_lane_end_to_end(lane) -> None:
    from parity import checks

    inv("up", "--mode", "kind", "--phase", "1")
    one = validate(1)
    names = [name for name, _ in checks.discover(ROOT)]
    assert [r["check"] for r in one["results"]] == names  # the same rows as compose
    assert "browser.login_in_a_real_browser" in names  # a real browser, through Traefik

    inv("up", "--mode", "kind", "--phase", "3")
    validate(3)

    # a repeated up with nothing changed changes nothing
    before = pods()
    again = inv("up", "--mode", "kind", "--phase", "3")
    assert "0 built" in again.stderr and "0 loaded" in again.stderr, again.stderr[-2000:]
    assert "edge     keep" in again.stderr, again.stderr[-2000:]
    assert pods() == before, "a no-op up restarted or replaced pods"

    table = inv("status", "--mode", "kind", "--phase", "3")
    assert f"cluster {CLUSTER}: {CLUSTER}-control-plane Ready" in table.stdout
    status = json.loads(inv("status", "--mode", "kind", "--phase", "3", "--json").stdout)
    assert status["ready"] and status["cluster"]["exists"]
    assert {r["service"] for r in status["services"]} >= {"postgres", "api", "edge", "vault"}

    # Postgres keeps its data when its pod goes: parity's PersistentVolume, pre-bound
    # to the claim, on .parity/data/kind/ mounted at local-path-provisioner's path
    psql("CREATE TABLE parity_e2e (v text); INSERT INTO parity_e2e VALUES ('kept')")
    from parity import cli

    driver = cli.lane(ROOT, cli.selection("kind", 3, "offline"), quiet=True)
    pvc = driver.kube.get("v1", "PersistentVolumeClaim", "data-postgres-0", "parity")
    assert pvc["status"]["phase"] == "Bound", pvc["status"]
    assert pvc["spec"]["volumeName"] == "parity-parity-data-postgres-0"
    pv = driver.kube.get("v1", "PersistentVolume", pvc["spec"]["volumeName"])
    assert pv["spec"]["hostPath"]["path"] == \
        "/var/local-path-provisioner/parity_data-postgres-0"
    assert (ROOT / ".parity" / "data" / "kind" / "parity_data-postgres-0").is_dir()
    old_uid = driver.kube.get("v1", "Pod", "postgres-0", "parity")["metadata"]["uid"]
    driver.kube.delete("v1", "Pod", "postgres-0", "parity")
    deadline = time.monotonic() + 300
    while True:
        pod = driver.kube.get("v1", "Pod", "postgres-0", "parity") or {}
        if pod and pod["metadata"]["uid"] != old_uid and driver.verdict(
                "StatefulSet", "postgres").ready:
            break
        assert time.monotonic() < deadline, "postgres did not come back in 300 s"
        time.sleep(2)
    assert psql("SELECT v FROM parity_e2e") == "kept"

    # ... and when the cluster goes (decision 0016): down keeps it, the next up finds it
    down = inv("down", "--mode", "kind")
    assert "kept " in down.stdout and ".parity/data/kind/parity_data-postgres-0" in \
        down.stdout, down.stdout
    assert docker("ps", "-a", "-q", "--filter",
                  f"label=io.x-k8s.kind.cluster={CLUSTER}").stdout.strip() == ""
    inv("up", "--mode", "kind", "--phase", "3")
    # no --phase: status follows what runs (recorded by up), not phase 1
    status = json.loads(inv("status", "--mode", "kind", "--json").stdout)
    assert "vault" in {r["service"] for r in status["services"]} and status["ready"]
    assert psql("SELECT v FROM parity_e2e") == "kept"

    inv("reset", "--mode", "kind", "--phase", "3")
    validate(3, browser=False)
    assert psql("SELECT to_regclass('public.parity_e2e') IS NULL") == "t"  # fresh volumes

    inv("down", "--mode", "kind", "--volumes")
    assert docker("ps", "-a", "-q", "--filter",
                  f"label=io.x-k8s.kind.cluster={CLUSTER}").stdout.strip() == ""
    assert not (ROOT / ".parity" / "kind").exists()
    assert not (ROOT / ".parity" / "data" / "kind").exists()
    home_before, network_before = lane
    assert kube_home() == home_before, "something under ~/.kube changed"
    if not network_before:  # kind made its network for parity's cluster: gone again
        assert docker("network", "inspect", "kind").returncode != 0
    assert docker("container", "inspect", SENTINEL).returncode == 0
    assert docker("volume", "inspect", SENTINEL).returncode == 0
    assert docker("network", "inspect", SENTINEL).returncode == 0
