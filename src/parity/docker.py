"""The Docker engine and Compose v2 CLI, as parity uses them: subprocess calls with
errors that say what to do (exit 3 for a missing prerequisite)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from .errors import CheckFailed, PrerequisiteMissing

MIN_COMPOSE = (2, 24, 0)  # env_file with path/required, configs with inline content
INSTALL_HINT = ("install Docker Engine and the Compose v2 plugin (Debian: "
                "bash .ci/install-docker.sh; elsewhere: https://docs.docker.com/engine/install/)")


def run(args: list[str], *, check: bool = True, timeout: float | None = 600,
        cwd: Path | None = None, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              input=input, env=env)
    except FileNotFoundError:
        raise PrerequisiteMissing(f"'{args[0]}' is not installed", hint=INSTALL_HINT) from None
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"'{' '.join(args[:4])} …' did not finish in {timeout:.0f} s",
                          hint="see docker info and the engine's log") from None
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise CheckFailed(f"'{' '.join(args[:5])} …' failed (exit {proc.returncode}):\n{tail}")
    return proc


def cli_present() -> bool:
    """Is a ``docker`` command on PATH (whether or not an engine answers)?"""
    return shutil.which("docker") is not None


def engine_ok() -> None:
    if not cli_present():
        raise PrerequisiteMissing("the docker CLI is not installed", hint=INSTALL_HINT)
    proc = run(["docker", "info", "--format", "{{json .ServerVersion}}"], check=False,
               timeout=20)
    if proc.returncode != 0:
        raise PrerequisiteMissing(
            "the Docker engine is not reachable: " + (proc.stderr.strip().splitlines() or
                                                      ["no answer"])[-1],
            hint="start it (Docker Desktop, 'sudo systemctl start docker', or "
                 "bash .ci/install-docker.sh on Debian) and try again")


_buildx: bool | None = None


def has_buildx() -> bool:
    """Is the buildx plugin installed? Asked once per process."""
    global _buildx
    if _buildx is None:
        try:
            _buildx = run(["docker", "buildx", "version"], check=False,
                          timeout=30).returncode == 0
        except (OSError, CheckFailed, PrerequisiteMissing):
            _buildx = False
    return _buildx


def build_env() -> dict[str, str]:
    """The environment for ``docker build`` and ``docker import``."""
    env = dict(os.environ)
    # Without the buildx plugin a recent CLI can only use the classic builder; ask
    # for it explicitly so the CLI does not stop at "buildx component is missing".
    if "DOCKER_BUILDKIT" not in env and not has_buildx():
        env["DOCKER_BUILDKIT"] = "0"
    return env


def compose_version() -> tuple[int, int, int]:
    proc = run(["docker", "compose", "version", "--short"], check=False, timeout=20)
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", proc.stdout or "")
    if proc.returncode != 0 or not m:
        raise PrerequisiteMissing("the Docker Compose v2 plugin is missing ('docker compose' "
                                  "does not answer)", hint=INSTALL_HINT)
    version = tuple(int(x) for x in m.groups())
    if version < MIN_COMPOSE:
        raise PrerequisiteMissing(
            f"Docker Compose {'.'.join(map(str, version))} is too old; parity needs "
            f"{'.'.join(map(str, MIN_COMPOSE))} or newer", hint=INSTALL_HINT)
    return version  # type: ignore[return-value]


def json_lines(text: str) -> list[dict]:
    """`docker ... --format json` prints one object per line (or one array)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def labelled(kind: str, labels: dict[str, str]) -> list[dict]:
    """Containers, volumes or networks carrying every label given."""
    args = ["docker", kind, "ls", "--format", "{{json .}}"]
    if kind == "container":
        args = ["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}"]
    for k, v in labels.items():
        args += ["--filter", f"label={k}={v}"]
    return json_lines(run(args, timeout=60).stdout)


def inspect(ids: list[str]) -> list[dict]:
    if not ids:
        return []
    return json.loads(run(["docker", "inspect", *ids], timeout=60).stdout)


#: A marker in decision 0010's docker shim (testbin/docker-shim/docker): how doctor
#: tells that kind's ``docker run --privileged`` goes through it.
SHIM_MARKER = "parity-docker-shim"
SHIM_DIR = "testbin/docker-shim"
SHIM_HINT = ("kind runs its nodes with docker run --privileged. Where the engine cannot "
             "(decision 0010), run the kind lane through parity's documented shim: add "
             f"SHIM=1 to make (make kind-parity-up SHIM=1 ...), or export PATH=\"$PWD/"
             f"{SHIM_DIR}:$PATH\" for inv (docs/runbook-kind.md"
             "#docker-cannot-run-privileged-containers)")


def shim_in_use() -> str | None:
    """The path of the docker shim when it is the ``docker`` on PATH, else None."""
    found = shutil.which("docker")
    if found is None:
        return None
    try:
        with open(found, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    return found if SHIM_MARKER.encode() in head else None


def privileged_probe() -> tuple[bool | None, str]:
    """Can the engine start a ``--privileged`` container? (True, how) / (False, why) /
    (None, why not known). Starts a container that cannot run anything (its
    entrypoint does not exist) from any local image, with no network; runc applies
    the capabilities before it looks for the entrypoint, so the two failures tell
    the answer apart. The container is removed (--rm); nothing is pulled."""
    proc = run(["docker", "image", "ls", "-q", "--no-trunc"], check=False, timeout=30)
    images = (proc.stdout or "").split()
    if proc.returncode != 0 or not images:
        return None, "no local image to probe with (the first build makes one)"
    # as root: a non-root USER gets no capabilities, so the probe would pass where
    # kind's root node cannot start
    probe = run(["docker", "run", "--rm", "--privileged", "--user", "0:0", "--network", "none",
                 "--entrypoint", "/parity-privileged-probe", "--label",
                 "parity.dev/managed=true", images[0]], check=False, timeout=60)
    text = " ".join((probe.stderr or "").split())
    if "apply caps" in text or "operation not permitted" in text:
        m = re.search(r"(unable to apply caps[^.]*?|[^:]*operation not permitted)(: unknown|$)",
                      text)
        return False, "docker run --privileged fails: " + (m.group(1) if m else text[-160:])
    if "no such file" in text or "not found" in text:
        return True, "docker run --privileged works"
    return None, text[-240:] or f"exit {probe.returncode}"
