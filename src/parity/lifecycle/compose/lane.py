"""The compose lane: up, status, down and reset of parity's Compose project.

Everything here acts on one project, named after the stack, and only on objects
that carry parity's labels; ``down`` refuses to touch a project of the same name
that parity did not create.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from ... import checkout, docker, images, lock, running, secrets, tls
from ...datacompat import Written, check, forget, recalled, remember
from ...errors import CheckFailed, InputError, PrerequisiteMissing
from ...findings import Finding, attempt
from ...render import RenderContext, default_out, render, write
from ...render.names import LABEL_MANAGED, LABEL_SERVICE, LABEL_STACK
from ...yamlio import write_atomic
from .. import UI, Step, run_steps
from .ports import port_free, who_listens
from .status import ComposeStatus, label

MIN_FREE_BYTES = 2 * 1024**3


class ComposeLane(ComposeStatus):
    def __init__(self, root: Path, resolved, ui: UI | None = None, timeout: float = 600):
        self.root = root
        self.resolved = resolved
        self.stack = resolved.stack
        self.ui = ui or UI()
        self.timeout = timeout
        self.state = root / ".parity"
        self.out = default_out(root, "compose", self.stack.phase)
        self.file = self.out / "docker-compose.yaml"
        self.project = self.stack.name
        self.identity_file = (self.state / "identity"
                              / f"compose-{self.project}-phase{self.stack.phase}.yaml")
        self.report: dict = {}

    # ------------------------------------------------------------------ commands

    def compose(self, *args: str, check: bool = True, timeout: float | None = 600):
        files = ["-f", str(self.file)]
        if self.identity_file.exists():  # this checkout's labels on every container
            files += ["-f", str(self.identity_file)]
        return docker.run(["docker", "compose", "-p", self.project, *files,
                           *args], check=check, timeout=timeout)

    def up(self) -> dict:
        steps = [
            Step("preflight", "preflight: engine, Compose v2, ports, disk", self.prerequisites),
            Step("render", "render the compose project", self.render),
            Step("secrets", "local secrets and the edge certificate", self.materialize),
            Step("images", f"images (profile {self.stack.profile})", self.images),
            Step("start", "start services in dependency order", self.start),
            Step("wait", "wait until every service is ready", self.wait_ready),
        ]
        run_steps(steps, self.ui)
        return self.report

    # ------------------------------------------------------------------ steps

    def preflight(self) -> list[Finding]:
        """This lane's named checks besides the engine, the compose plugin and disk
        (``inv doctor`` shows them all; :meth:`prerequisites` stops at the first)."""
        stack = self.stack
        return [attempt("host ports", self.check_ports,
                        lambda _: f"{stack.edge_bind}:{stack.http_port} and "
                                  f":{stack.https_port} free (or parity's)"),
                attempt("data", self.check_data,
                        lambda _: "no data written by another image")]

    def prerequisites(self) -> str:
        """up's first step: every prerequisite, stopping at the first missing one."""
        docker.engine_ok()
        self.check_owner("up")
        version = docker.compose_version()
        self.check_ports()
        self.check_data()
        free = self.check_disk()
        return f"Compose {'.'.join(map(str, version))}, {free / 1024**3:.0f} GiB free"

    @staticmethod
    def check_disk() -> int:
        root_dir = docker.run(["docker", "info", "--format", "{{.DockerRootDir}}"],
                              timeout=20).stdout.strip() or "/"
        try:
            free = shutil.disk_usage(root_dir).free
        except OSError:
            free = shutil.disk_usage("/").free
        if free < MIN_FREE_BYTES:
            raise PrerequisiteMissing(
                f"only {free / 1024**3:.1f} GiB free for Docker at {root_dir}; parity needs 2 GiB",
                hint="free space: docker system prune (removes unused images of all projects; "
                     "check first) or enlarge the disk")
        return free

    def check_data(self) -> None:
        """Refuse to start an image on a volume an incompatible image wrote (see
        :mod:`parity.datacompat`): the containers that ran are the record, else what
        ``down`` remembered about the volumes it kept."""
        written = {w.service: w for w in self.writers()}
        if self.stack.services:
            kept = {r["Name"] for r in docker.labelled("volume", self._ours())}
            for w in self._recalled():
                if w.service not in written and any(v in kept for v in w.data.split()):
                    written[w.service] = w
        run = running.read(self.root).get("compose")
        check(written.values(), self.stack, f"inv reset --phase {self.stack.phase} --profile "
                                            f"{self.stack.profile}",
              profile=run.profile if run else None)

    def _ours(self) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}

    def _recalled(self):
        return recalled(self.state, "compose")

    def writers(self) -> list:
        """The data of each stateful service with a container, and the image
        reference that container was created from (``Config.Image``: the reference
        the stack asked for, also after a rebuild moved its tag to a new ID)."""
        rows = docker.labelled("container", self._ours())
        out = []
        for info in docker.inspect([r["ID"] for r in rows]):
            labels = (info.get("Config") or {}).get("Labels") or {}
            name = labels.get(LABEL_SERVICE, "")
            svc = self.stack.services.get(name)
            if svc is None or not svc.storage:
                continue
            names = [f"{self.project}_{name}-{s.name}" for s in svc.storage]
            image = (info.get("Config") or {}).get("Image") or info.get("Image", "")
            out.append(Written(name, "volume " + " ".join(names), image,
                               _backup_command(names[0], image)))
        return out

    def check_ports(self) -> None:
        for port, var in ((self.stack.http_port, "PARITY_HTTP_PORT"),
                          (self.stack.https_port, "PARITY_HTTPS_PORT")):
            if port_free(self.stack.edge_bind, port) or self._port_is_ours(port):
                continue
            raise PrerequisiteMissing(
                f"{self.stack.edge_bind}:{port} is in use by another process"
                f"{who_listens(port)}",
                hint=f"stop that process, or run on another port: {var}={port + 8000} inv up")

    def _port_is_ours(self, port: int) -> bool:
        rows = docker.json_lines(docker.run(
            ["docker", "ps", "--format", "{{json .}}", "--filter", f"label={LABEL_MANAGED}=true",
             "--filter", f"label={LABEL_STACK}={self.stack.name}", "--filter",
             f"publish={port}"], timeout=30).stdout)
        return bool(rows)

    def render(self) -> str:
        files = render(self.stack, RenderContext.for_output(self.root, self.out))
        with lock.render_dir(self.root, self.out):
            changed = write(files, self.out)
        self.write_identity(files["docker-compose.yaml"])
        return f"{self.file.relative_to(self.root)} ({'changed' if changed else 'unchanged'})"

    def materialize(self) -> str:
        created = secrets.ensure(self.stack, self.state)
        secrets.write_env_files(self.stack, self.state)
        material = tls.ensure(self.state, self.stack.domain)
        for note in material.notes:
            self.ui.line(f"    {note}")
        parts = [f"{len(created)} secret values created" if created else "secrets unchanged"]
        if material.ca_created:
            parts.append(f"new local CA {tls.ca_paths(self.state)[0].relative_to(self.root)}")
        return ", ".join(parts)

    def images(self) -> str:
        checkout.refuse_shared_images(self.stack, self.root, "inv up")
        results = images.build(self.stack, self.root, progress=self.ui.line)
        pulled = self.pull_missing()
        return images.summary(results, self.running_images()) + (
            f", {pulled} pulled" if pulled else "")

    def running_images(self) -> dict[str, str]:
        """Image reference -> the image ID its containers of this stack run."""
        rows = docker.labelled("container", self._ours())
        return {(i.get("Config") or {}).get("Image", ""): i.get("Image", "")
                for i in docker.inspect([r["ID"] for r in rows])}

    def pull_missing(self) -> int:
        """Pull the public images that are not present, one by one, so a missing
        registry is reported as what it is (exit 3) with the way around it."""
        wanted = sorted({s.image for s in self.stack.services.values() if s.build is None})
        pulled = 0
        for image in wanted:
            if docker.run(["docker", "image", "inspect", image], check=False,
                          timeout=30).returncode == 0:
                continue
            self.ui.line(f"pulling {image} …")
            proc = docker.run(["docker", "pull", "-q", image], check=False, timeout=600)
            if proc.returncode != 0:
                reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
                raise PrerequisiteMissing(
                    f"cannot pull {image} (profile {self.stack.profile}): {reason}",
                    hint="where no container registry is reachable, use the offline image "
                         "profile: make up PROFILE=offline (or PARITY_IMAGE_PROFILE=offline "
                         "inv up)")
            pulled += 1
        return pulled

    def start(self) -> str:
        proc = self._compose_up()
        actions = _count_actions(proc.stderr + proc.stdout)
        self.report["containers"] = actions
        return (f"{actions['changed']} containers created or recreated, "
                f"{actions['started']} started, {actions['unchanged']} unchanged")

    def _compose_up(self):
        """`docker compose up -d` waits for healthy dependencies before starting a
        dependent; show which services are still coming up while it does."""
        result: dict = {}

        def target():
            result["proc"] = self.compose("up", "-d", "--remove-orphans", "--no-build",
                                          check=False, timeout=self.timeout)

        t = threading.Thread(target=target, daemon=True)
        t.start()
        with self.ui.status("starting") as status:
            while t.is_alive():
                t.join(2)
                if t.is_alive():
                    pending = [s.service for s in self.status() if not s.ready]
                    status.update(f"starting; waiting for {', '.join(pending) or '…'}")
        proc = result["proc"]
        if proc.returncode != 0:
            self._fail("services did not start", proc.stderr)
        return proc

    def wait_ready(self) -> str:
        deadline = time.monotonic() + self.timeout
        with self.ui.status("waiting") as status:
            while True:
                rows = self.status()
                failed = [r for r in rows if r.health == "failed"]
                if failed:
                    self._fail("a service failed", "")
                pending = [r for r in rows if not r.ready]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    self._fail(f"not ready after {self.timeout:.0f} s", "")
                status.update("waiting for " + ", ".join(f"{r.service} ({r.health})"
                                                          for r in pending))
                time.sleep(1)
        self.report["endpoints"] = self.endpoints()
        return f"{len(rows)} services ready"

    def _fail(self, what: str, compose_output: str) -> None:
        bad = [r for r in self.status(logs=True) if not r.ready]
        lines = [f"{what}:"]
        for r in bad:
            lines.append(f"  {r.service}: {r.state}/{r.health} — {r.reason or 'no reason given'}")
            for log in r.logs[-10:]:
                lines.append(f"      | {log}")
        if compose_output and not bad:
            lines.append(secrets.mask(compose_output.strip(), self.state))
        raise CheckFailed("\n".join(lines), hint="inv status shows the current state; fix the "
                                                 "service and run inv up again")

    # ------------------------------------------------------------------ ownership

    def write_identity(self, rendered: str) -> None:
        """A Compose override adding this checkout's identity to every container
        (decision 0015); the render itself stays independent of the checkout."""
        import yaml  # lazy: PyYAML is only needed here, to read the render back

        services = (yaml.safe_load(rendered) or {}).get("services") or {}
        labels = checkout.labels(checkout.identity(self.root))
        write_atomic(self.identity_file, json.dumps(
            {"services": {name: {"labels": labels} for name in sorted(services)}},
            indent=2) + "\n")

    def refuse_foreign(self) -> None:
        """Objects of the Compose project that parity did not create: refuse."""
        project = {"com.docker.compose.project": self.project}
        for kind in ("container", "volume", "network"):
            foreign = [r for r in docker.labelled(kind, project)
                       if label(r.get("Labels", ""), LABEL_MANAGED) != "true"]
            if foreign:
                names = ", ".join(sorted(r.get("Names") or r.get("Name", "?") for r in foreign))
                raise InputError(
                    f"the Compose project '{self.project}' has {kind}s parity did not create: "
                    f"{names}", hint="parity leaves them alone; remove them yourself or rename "
                                     "that project")

    def check_owner(self, command: str) -> None:
        """Refuse before changing anything when the project holds objects parity did
        not create, or containers of another checkout (``up`` also: containers
        without this checkout's identity)."""
        self.refuse_foreign()
        mine = checkout.identity(self.root).id
        others: dict[str, list[str]] = {}
        unmarked = []
        for row in docker.labelled("container", {"com.docker.compose.project": self.project}):
            owner = label(row.get("Labels", ""), checkout.LABEL_CHECKOUT)
            if owner == mine:
                continue
            if owner:
                others.setdefault(owner, []).append(row.get("ID", ""))
            elif command == "up":
                unmarked.append(row.get("Names") or row.get("ID", "?"))
        for owner, ids in others.items():
            infos = docker.inspect(ids)
            path = infos[0]["Config"]["Labels"].get(checkout.LABEL_CHECKOUT_PATH, "?")
            raise checkout.other_checkout(
                f"the Compose project '{self.project}'", path,
                [i.get("Name", "").lstrip("/") for i in infos], f"inv {command}",
                checkout.stack_name_hint("compose"))
        if unmarked:
            names = ", ".join(sorted(unmarked))
            raise InputError(
                f"the Compose project '{self.project}' has containers that do not carry this "
                f"checkout's identity: {names}",
                hint="parity marks every container it starts with its checkout (decision "
                     "0015). If an older parity in this checkout started them: docker rm -f "
                     f"{names} (their volumes and data stay), then inv up. Otherwise they are "
                     "not yours: give this checkout its own environment: "
                     + checkout.stack_name_hint("compose"))

    # ------------------------------------------------------------------ down

    def down(self, dry_run: bool = False, volumes: bool = False) -> str:
        """Remove parity's containers and networks of this stack, nothing else, and
        keep its data volumes for the next ``up`` (decision 0016); ``volumes`` (reset,
        ``inv down --volumes``) removes those too. ``dry_run``: name what would be
        removed, remove nothing."""
        docker.engine_ok()
        self.check_owner("down")
        ours = self._ours()
        kinds = ("container", "volume", "network") if volumes else ("container", "network")
        data = sorted(r["Name"] for r in docker.labelled("volume", ours))
        kept = "" if volumes or not data else _kept(data)
        if dry_run:
            found = {kind: sorted(r.get("Names") or r.get("Name") or r.get("ID", "?")
                                  for r in docker.labelled(kind, ours))
                     for kind in kinds}
            if not any(found.values()):
                text = "would remove nothing: parity has no containers, volumes or networks"
            else:
                text = "would remove (nothing removed yet):\n" + "\n".join(
                    f"  {len(names)} {kind}{'s' if len(names) != 1 else ''}: {', '.join(names)}"
                    for kind, names in found.items() if names)
            return text + (f"\nwould keep {kept[5:]}" if kept else "")
        rows = docker.labelled("container", ours)
        if not volumes:
            remember(self.state, "compose", self.writers())
        containers = [r["ID"] for r in rows]
        if containers:
            docker.run(["docker", "rm", "-f", "-v", *containers], timeout=120)
        removed_volumes = []
        if volumes and data:
            docker.run(["docker", "volume", "rm", "-f", *data], timeout=120)
            removed_volumes = data
        if volumes:
            forget(self.state, "compose")
        networks = [r["Name"] for r in docker.labelled("network", ours)]
        if networks:
            docker.run(["docker", "network", "rm", *networks], timeout=120)
        text = (f"removed {len(containers)} containers, "
                + (f"{len(removed_volumes)} volumes, " if volumes else "")
                + f"{len(networks)} networks")
        return text + (f"\n{kept}" if kept else "")


def _kept(volumes: list[str]) -> str:
    """The line ``down`` ends with when it keeps data (the wording is the contract of
    decision 0016 and the runbooks)."""
    n = len(volumes)
    return (f"kept {n} data volume{'s' if n != 1 else ''}: {', '.join(volumes)}; "
            "`inv reset` or `inv down --volumes` removes them")


def _backup_command(volume: str, image: str) -> str:
    return (f"docker run --rm -v {volume}:/data:ro -v \"$PWD\":/backup --entrypoint tar "
            f"{image} czf /backup/{volume}.tgz -C /data .")


def _count_actions(output: str) -> dict[str, int]:
    """Compose prints one line per container action ('Container x  Recreated'):
    count containers created or recreated, started, and left as they were."""
    seen: set[str] = set()
    changed: set[str] = set()
    started: set[str] = set()
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "Container":
            seen.add(parts[1])
            if parts[-1] in ("Create", "Creating", "Created", "Recreate", "Recreated"):
                changed.add(parts[1])
            elif parts[-1] in ("Starting", "Started"):
                started.add(parts[1])
    return {"changed": len(changed), "started": len(started - changed),
            "unchanged": len(seen - changed - started)}
