"""The compose lane end to end on a real Docker engine, offline image profile.

up phase 1 -> validate -> up 2 -> validate -> up 3 -> validate -> up 3 again
(nothing recreated) -> reset -> validate -> down. An unrelated container and
volume created before must survive, and nothing of parity's may remain.
Run with ``nox -s e2e_compose`` (or ``pytest -m e2e``); it needs the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("PARITY_")},
       "PARITY_IMAGE_PROFILE": "offline"}
UNRELATED = "parity-e2e-unrelated"


def inv(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=ENV,
                          text=True, capture_output=True, timeout=1200)
    sys.stdout.write(f"\n$ inv {' '.join(args)}  (exit {proc.returncode})\n{proc.stdout}"
                     f"{proc.stderr[-3000:]}")
    if check and proc.returncode != 0:
        pytest.fail(f"inv {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}")
    return proc


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], text=True, capture_output=True,
                          check=True).stdout


def parity_objects() -> dict[str, list[str]]:
    label = "label=parity.dev/stack=parity"
    return {
        "containers": docker("ps", "-aq", "--filter", label).split(),
        "volumes": docker("volume", "ls", "-q", "--filter", label).split(),
        "networks": docker("network", "ls", "-q", "--filter", label).split(),
    }


@pytest.fixture(scope="module")
def unrelated():
    """A container and a volume parity must never touch."""
    subprocess.run(["docker", "rm", "-f", UNRELATED], capture_output=True)
    subprocess.run(["docker", "volume", "rm", "-f", UNRELATED], capture_output=True)
    docker("volume", "create", "--label", "owner=someone-else", UNRELATED)
    inv("images", "--profile", "offline", "--phase", "1")
    docker("run", "-d", "--name", UNRELATED, "--label", "owner=someone-else",
           "-v", f"{UNRELATED}:/data", "--entrypoint", "sleep",
           "parity-offline/base:bookworm", "infinity")
    yield
    subprocess.run(["docker", "rm", "-f", UNRELATED], capture_output=True)
    subprocess.run(["docker", "volume", "rm", "-f", UNRELATED], capture_output=True)


def validate(phase: int) -> dict:
    proc = inv("validate", "--phase", str(phase), "--json", check=False)
    data = json.loads(proc.stdout)
    failed = [r for r in data["results"] if r["status"] == "fail"]
    assert proc.returncode == 0 and not failed, failed
    return data


def test_compose_lane_end_to_end(unrelated) -> None:
    inv("down")  # start clean, whatever an earlier run left
    for phase in (1, 2, 3):
        out = inv("up", "--phase", str(phase))
        assert "is up" in out.stdout
        data = validate(phase)
        passed = {r["check"] for r in data["results"] if r["status"] == "pass"}
        assert "smoke.dev_token_accepted_by_api" in passed
        assert "contract.api_received_the_rendered_contract" in passed
        if phase == 3:
            assert {"smoke.vault_routed", "smoke.registry_routed"} <= passed

    again = inv("up", "--phase", "3")
    assert "0 containers created or recreated" in again.stderr, again.stderr

    # switching the image profile on live data is refused before anything changes
    before = sorted(docker("ps", "-aq", "--no-trunc", "--filter",
                           "label=parity.dev/stack=parity").split())
    switch = inv("up", "--phase", "3", "--profile", "default", check=False)
    assert switch.returncode == 2, switch.stderr
    assert ("base/services/postgres.yaml:6: services.postgres.image: the data in volume "
            "parity_postgres-data was written by parity-offline/postgres:15-bookworm; this up "
            "would start postgres:16.4-bookworm on it (another image repository)"
            in switch.stderr), switch.stderr
    assert "inv reset --phase 3 --profile default" in switch.stderr
    assert sorted(docker("ps", "-aq", "--no-trunc", "--filter",
                         "label=parity.dev/stack=parity").split()) == before

    # down --dry-run names what down would remove, and removes nothing
    plan = inv("down", "--dry-run").stdout
    assert plan.startswith("would remove (nothing removed yet):\n"), plan
    assert "parity_postgres-data" in plan and "14 containers" in plan, plan
    assert UNRELATED not in plan
    assert sorted(docker("ps", "-aq", "--no-trunc", "--filter",
                         "label=parity.dev/stack=parity").split()) == before

    status = json.loads(inv("status", "--phase", "3", "--json").stdout)
    assert status["ready"] is True
    assert len(status["services"]) == 14

    inv("reset", "--phase", "3")
    validate(3)

    inv("down")
    assert parity_objects() == {"containers": [], "volumes": [], "networks": []}
    assert docker("ps", "-aq", "--filter", f"name={UNRELATED}").strip()
    assert docker("volume", "ls", "-q", "--filter", f"name={UNRELATED}").strip()
