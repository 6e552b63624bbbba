"""Data rules: where stateful services keep their data (replicas, volumes, data
directories, storage classes)."""

from __future__ import annotations

import re

from ..errors import did_you_mean
from ..nodes import ListKey
from .base import Ctx, rule


KIND_STORAGE_CLASSES = ("standard",)   # kind's local-path provisioner (node image)


DEV_MODE = re.compile(r"(--?dev|start-dev|--?dev-mode|server-dev|--?in-memory)", re.I)


@rule("stateful-replicas", "a stateful service with more than one replica")
def stateful_replicas(c: Ctx):
    for name, svc in c.services.items():
        dev = next((a for a in [*(svc.get("command") or []), *(svc.get("args") or [])]
                    if DEV_MODE.fullmatch(str(a))), None)
        if dev and (svc.get("replicas") or 0) > 1:
            yield ("services", name, "replicas"), (
                f"{name} runs a dev-mode server ('{dev}') with {svc['replicas']} replicas: "
                "each keeps its state in its own memory, so requests land on instances "
                "that do not know each other"), "replicas: 1 for a dev-mode server"
            continue
        if svc.get("storage") and svc.get("workload") != "stateful" and \
                (svc.get("replicas") or 0) > 1:
            yield ("services", name, "replicas"), (
                f"{name} keeps data on a volume ({svc['storage'][0]['path']}) and runs "
                f"{svc['replicas']} replicas: they write one volume at once (compose) or "
                "each its own (kind)"), "replicas: 1 for a service with storage"
            continue
        if svc.get("workload") == "stateful" and (svc.get("replicas") or 0) > 1:
            yield ("services", name, "replicas"), (
                f"{name} is stateful with {svc['replicas']} replicas: each replica gets its "
                "own volume, so they hold different data and nothing replicates it"), \
                "replicas: 1 (run a replicated system, e.g. a Postgres operator, if you " \
                "need more)"


DATA_FLAG = re.compile(r"(data|store|storage|db|state|dir|path|file)", re.I)


@rule("data-outside-volume", "a stateful service writing where no volume is mounted")
def data_outside_volume(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("workload") != "stateful":
            continue
        mounts = [v["path"].rstrip("/") for v in svc.get("storage") or []]
        items = [str(x) for x in [*(svc.get("command") or []), *(svc.get("args") or [])]]
        for i, item in enumerate(items):
            flag, eq, value = item.partition("=")
            if not eq:
                value = items[i + 1] if i + 1 < len(items) else ""
            if not (flag.startswith("-") and DATA_FLAG.search(flag) and value.startswith("/")):
                continue
            if not any(value == m or value.startswith(m + "/") for m in mounts):
                field_name = "command" if i < len(svc.get("command") or []) else "args"
                idx = i if field_name == "command" else i - len(svc.get("command") or [])
                yield ("services", name, field_name, idx), (
                    f"{name} keeps its data in {value} ({flag}), where no volume is "
                    "mounted: it lives in the container's layer, which a pod restart in "
                    "kind throws away"), \
                    f"add storage: [{{name: data, path: {_data_dir(value)}}}]"
                break


def _data_dir(path: str) -> str:
    last = path.rstrip("/").rsplit("/", 1)
    return (last[0] or "/") if len(last) == 2 and "." in last[1] else path.rstrip("/")


@rule("unknown-storage-class", "a storage class the kind cluster does not have",
      modes=("kind",))
def unknown_storage_class(c: Ctx):
    for name, svc in c.services.items():
        for v in svc.get("storage") or []:
            sc = v.get("storage_class")
            if sc is not None and sc not in KIND_STORAGE_CLASSES:
                yield ("services", name, "storage", ListKey(v["name"]), "storage_class"), (
                    f"storage class '{sc}' does not exist in the kind cluster "
                    f"(it has {', '.join(KIND_STORAGE_CLASSES)}): the claim stays Pending"
                    f"{did_you_mean(sc, KIND_STORAGE_CLASSES)}"), \
                    "use standard (local-path) or leave storage_class out (the default class)"


#: env keys that say where a program keeps its data
DATA_ENV = re.compile(r"^(PGDATA|[A-Z0-9_]*_(DATA|DATA_DIR|DATADIR|STORAGE_PATH|DATA_PATH|"
                      r"STORE_DIR|STATE_DIR|ROOTDIRECTORY|ROOT_DIR|STORAGE_DIR|DB_PATH|"
                      r"DATA_ROOT))$")


@rule("data-env-outside-volume", "a data directory variable that points outside the volume")
def data_env_outside_volume(c: Ctx):
    for name, svc in c.services.items():
        mounts = [v["path"].rstrip("/") for v in svc.get("storage") or []]
        if not mounts:
            continue
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str) or not DATA_ENV.match(key) or \
                    not value.startswith("/"):
                continue
            if not any(value == m or value.startswith(m + "/") for m in mounts):
                yield ("services", name, "env", key), (
                    f"{key} puts {name}'s data in {value}, but its volume is mounted at "
                    f"{', '.join(mounts)}: the data lives in the container's layer and is "
                    "gone with the container (compose) or the pod (kind)"), \
                    f"keep {key} under {mounts[0]} (or move the storage path)"
