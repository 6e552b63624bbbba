"""What the compose project runs now: the status table and the live checks.

:class:`ComposeStatus` is the reading half of
:class:`~parity.lifecycle.compose.lane.ComposeLane` (it reads ``self.stack``,
``self.file``, ``self.state`` and calls ``self.compose``); nothing here changes a
container.
"""

from __future__ import annotations

import json

from ... import docker, secrets
from ...errors import CheckFailed
from ...render.names import LABEL_MANAGED, LABEL_STACK
from .. import Delivered, Exec, ServiceStatus, env_list


class ComposeStatus:
    """Reading the project: status rows and live checks."""

    # ------------------------------------------------------------------ status

    def endpoints(self) -> list[dict]:
        return [{"route": r.name, "service": r.service,
                 "url": self.stack.transport.browser_url(r.host, r.path)}
                for r in sorted(self.stack.routes().values(), key=lambda r: r.name)]

    def containers(self) -> dict[str, dict]:
        if not self.file.exists():
            rows = docker.labelled("container", {LABEL_MANAGED: "true",
                                                 LABEL_STACK: self.stack.name})
        else:
            rows = docker.json_lines(self.compose("ps", "-a", "--format", "json",
                                                  timeout=60).stdout)
        out = {}
        for row in rows:
            labels = row.get("Labels", "")
            service = row.get("Service") or label(labels, "com.docker.compose.service")
            if service:
                out[service] = row
        return out

    def status(self, logs: bool = False) -> list[ServiceStatus]:
        rows = self.containers()
        inspected = {c["Config"]["Labels"].get("com.docker.compose.service"): c
                     for c in docker.inspect([r["ID"] for r in rows.values()])} if rows else {}
        urls = {}
        for e in self.endpoints():
            urls.setdefault(e["service"], e["url"])
        out = []
        for name, svc in self.stack.services.items():
            info = inspected.get(name)
            st = ServiceStatus(name, svc.phase, svc.workload, "missing", "none", False,
                               endpoint=urls.get(name, ""))
            if info is None:
                st.reason = "no container (not started)"
                out.append(st)
                continue
            state = info["State"]
            st.state = state.get("Status", "unknown")
            health = (state.get("Health") or {}).get("Status", "")
            if svc.workload == "job":
                if st.state == "exited":
                    code = state.get("ExitCode")
                    st.health = "completed" if code == 0 else "failed"
                    st.ready = code == 0
                    st.reason = "" if code == 0 else f"exited with code {code}"
                else:
                    st.health = "running"
                    st.reason = "job still running"
            else:
                st.health = health or "none"
                st.ready = st.state == "running" and health == "healthy"
                if st.state in ("exited", "dead"):
                    st.health = "failed"
                    st.reason = (f"exited with code {state.get('ExitCode')}"
                                 + (" (out of memory)" if state.get("OOMKilled") else ""))
                elif st.state == "restarting":
                    st.health = "failed"
                    st.reason = f"restarting (restart count {info.get('RestartCount', 0)})"
                elif health in ("unhealthy", "starting"):
                    probe = (state.get("Health") or {}).get("Log") or []
                    if probe:
                        last = probe[-1]
                        text = (last.get("Output") or "").strip().splitlines()
                        st.reason = (f"readiness probe exit {last.get('ExitCode')}: "
                                     f"{text[-1][:160] if text else 'no output'}")
                    elif health == "starting":
                        st.reason = "readiness probe has not run yet"
            if logs and not st.ready:
                proc = docker.run(["docker", "logs", "--tail", "20", info["Id"]], check=False,
                                  timeout=30)
                text = secrets.mask((proc.stdout + proc.stderr), self.state)
                st.logs = text.strip().splitlines()[-20:]
            out.append(st)
        return out

    # ------------------------------------------------------------------ live checks

    def _running(self, service: str) -> dict | None:
        row = self.containers().get(service)
        if row is None or row.get("State") != "running":
            return None
        return row

    def delivered(self, service: str) -> Delivered | None:
        """The environment Docker started the service's container with (None when it
        is not running, e.g. a job that completed)."""
        row = self._running(service)
        if row is None:
            return None
        info = docker.inspect([row["ID"]])[0]
        image = docker.run(["docker", "image", "inspect", "--format",
                            "{{json .Config.Env}}", info["Image"]], timeout=30).stdout
        return Delivered(env_list(info["Config"].get("Env")), env_list(json.loads(image)),
                         frozenset(), info.get("Name", "").lstrip("/"))

    def exec(self, service: str, argv: list[str], timeout: float = 60) -> Exec:
        """Run ``argv`` inside the service's running container."""
        row = self._running(service)
        if row is None:
            raise CheckFailed(f"{service} has no running container to run a command in")
        proc = docker.run(["docker", "exec", row["ID"], *argv], check=False, timeout=timeout)
        return Exec(proc.returncode, proc.stdout, proc.stderr)


def label(labels: str | dict, key: str) -> str:
    if isinstance(labels, dict):
        return labels.get(key, "")
    for part in labels.split(","):
        k, _, v = part.partition("=")
        if k == key:
            return v
    return ""
