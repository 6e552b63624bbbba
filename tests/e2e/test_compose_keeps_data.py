"""The compose lane keeps a person's data across down (decision 0016) and remembers
the running selection (issue 14), on a real Docker engine, offline profile:

up phase 2 -> plain status/validate check phase 2 -> a table created in Postgres ->
images rebuilt with --force while up -> up again is not refused -> down (keeps the
volumes, says so) -> up (no flags: the table is there) -> down --volumes -> nothing of
parity's remains. Run with ``nox -s e2e_compose`` (or ``pytest -m e2e``).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from test_compose_lane import docker, inv, parity_objects

pytestmark = pytest.mark.e2e

TABLE = "parity_e2e_kept"


def psql(sql: str) -> str:
    pg = docker("ps", "-q", "--filter", "label=com.docker.compose.service=postgres",
                "--filter", "label=parity.dev/stack=parity").split()[0]
    return docker("exec", pg, "sh", "-c",
                  f'psql -v ON_ERROR_STOP=1 -At -U "$POSTGRES_USER" -d postgres -c "{sql}"')


def test_down_keeps_the_data_and_later_commands_follow_the_running_selection() -> None:
    inv("down", "--volumes")  # start clean, whatever an earlier run left
    inv("up", "--phase", "2")

    # plain status and validate check what runs (phase 2), not phase 1
    status = inv("status", "--json")
    services = {s["service"] for s in json.loads(status.stdout)["services"]}
    assert "temporal" in services and len(services) == 11, services
    assert json.loads(status.stdout)["ready"] is True
    checks = inv("validate", "--json", check=False)
    failed = [r for r in json.loads(checks.stdout)["results"] if r["status"] == "fail"]
    assert checks.returncode == 0 and not failed, failed
    # an explicit other phase is said, not silently shown
    other = inv("status", "--phase", "1", check=False)
    assert ("note: the running compose environment is phase 2, profile offline (recorded "
            "by inv up); this shows what you asked for: phase 1") in other.stderr

    psql(f"CREATE TABLE {TABLE} (note text); INSERT INTO {TABLE} VALUES ('kept')")

    # a rebuild of the same image (same repository and tag, new ID: what inv images
    # --force does, in seconds) is not "another image repository", and the images step
    # says the image differs from what runs rather than "unchanged"
    image = "parity-offline/postgres:15-bookworm"
    old_id = docker("image", "inspect", "--format", "{{.Id}}", image).strip()
    subprocess.run(["docker", "build", "-q", "-t", image, "-"], check=True, text=True,
                   input=f"FROM {image}\nLABEL parity.e2e/rebuilt=1\n", capture_output=True)
    try:
        again = inv("up")
        assert (f"1 of them rebuilt since the running containers started: {image}"
                in again.stderr), again.stderr[-2000:]
        assert psql(f"SELECT note FROM {TABLE}").strip() == "kept"
    finally:
        docker("tag", old_id, image)

    down = inv("down")
    assert "kept 4 data volumes: " in down.stdout and "parity_postgres-data" in down.stdout, \
        down.stdout
    assert "`inv reset` or `inv down --volumes` removes them" in down.stdout
    left = parity_objects()
    assert left["containers"] == [] and left["networks"] == [] and left["volumes"], left

    inv("up", "--phase", "2")
    assert psql(f"SELECT note FROM {TABLE}").strip() == "kept"

    inv("down", "--volumes")
    assert parity_objects() == {"containers": [], "volumes": [], "networks": []}
