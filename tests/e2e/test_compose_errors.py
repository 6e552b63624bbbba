"""Actionable failures of the compose lane, on the real engine: missing
prerequisites exit 3 with the fix, a service that never becomes ready exits 1
and is named with its reason and last log lines."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PARITY_")}


def inv(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=900,
                          env={**BASE_ENV, "PARITY_IMAGE_PROFILE": "offline", **(env or {})})
    sys.stdout.write(f"\n$ inv {' '.join(args)} (exit {proc.returncode})\n{proc.stdout}"
                     f"{proc.stderr[-2500:]}")
    return proc


def test_engine_not_running_exits_3() -> None:
    proc = inv("up", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert proc.returncode == 3
    assert "error: the Docker engine is not reachable" in proc.stderr
    assert "next: start it (Docker Desktop, 'sudo systemctl start docker', or " \
           "bash .ci/install-docker.sh on Debian) and try again" in proc.stderr


def test_compose_plugin_missing_exits_3(tmp_path) -> None:
    """A stand-in docker CLI without the compose plugin: the plugin is installed
    system-wide here, so the only way to take it away is a shim on PATH that
    forwards everything except `docker compose` to the real CLI."""
    real = subprocess.run(["which", "docker"], text=True, capture_output=True).stdout.strip()
    shim = tmp_path / "docker"
    shim.write_text(f'#!/bin/sh\nif [ "$1" = compose ]; then\n'
                    f'  echo "docker: \'compose\' is not a docker command." >&2; exit 1\nfi\n'
                    f'exec {real} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    proc = inv("up", env={"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert proc.returncode == 3
    assert "error: the Docker Compose v2 plugin is missing ('docker compose' does not answer)" \
        in proc.stderr


def test_port_taken_by_another_process_exits_3() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        proc = inv("up", env={"PARITY_HTTPS_PORT": str(port)})
    assert proc.returncode == 3
    assert f"error: 127.0.0.1:{port} is in use by another process" in proc.stderr
    assert "next: stop that process, or run on another port: PARITY_HTTPS_PORT=" in proc.stderr


def test_a_service_that_never_becomes_ready_is_named_with_reason_and_logs() -> None:
    sets = ["--set", "services.web.readiness.http.path=/never-ready",
            "--set", "services.web.readiness.period_seconds=1",
            "--set", "services.web.readiness.failure_threshold=3"]
    try:
        proc = inv("up", "--timeout", "40", *sets)
        assert proc.returncode == 1
        assert "  web: running/unhealthy — readiness probe exit " in proc.stderr
        assert "not ready after 40 s:" in proc.stderr
        assert "      | " in proc.stderr  # its last log lines follow
        status = inv("status", "--json", *sets)
        assert status.returncode == 1
        web = {s["service"]: s for s in json.loads(status.stdout)["services"]}["web"]
        assert web["ready"] is False and web["health"] == "unhealthy"
        assert web["reason"].startswith("readiness probe exit ")
        assert any("/never-ready" in line for line in web["logs"])
        table = inv("status", *sets)
        assert "│ web      │ 1     │ running │ unhealthy │ NO    │ readiness probe exit " \
            in table.stdout
        assert "last log lines of web:" in table.stdout
    finally:
        assert inv("down").returncode == 0
