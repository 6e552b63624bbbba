"""A FAKE ``kind`` CLI (run through the ``kind`` shell script beside this file).

The kind lane's driver tests (tests/k8s/test_kind_lane_api.py) need no kind node
(nox -s e2e_kind runs the real one): they point "the kind cluster" at the real
control plane of tests/k8s/conftest.py, and this script answers the few kind commands the driver runs, the way kind v0.30 would:

- ``kind version``: ``kind v0.30.0 go1.24 linux/amd64``;
- ``kind get clusters``: the clusters whose marker exists in ``$FAKE_KIND_STATE/clusters``
  (kind's "No kind clusters found." on stderr when there is none);
- ``kind create cluster --name N --config F --kubeconfig K --wait D``: refuses an
  existing name (as kind does); records a copy of F; puts F's node labels on the
  kwok node (but parity's managed/stack labels); writes K, a kubeconfig whose
  only context is ``kind-N`` (cluster and user ``kind-N`` too, as kind names them)
  pointing at the real control plane (server 127.0.0.1:port and the credentials of
  ``$FAKE_KIND_UPSTREAM``, the fixture's kubeconfig); gives the "new cluster" what
  kubeadm gives every kind cluster and parity adopts or patches (kube-system's
  ``coredns`` ConfigMap with kubeadm's Corefile, field manager ``kubeadm``, and the
  ``coredns`` Deployment), when they are missing; creates the marker;
- ``kind export kubeconfig --name N --kubeconfig K``: writes K the same way;
- ``kind get kubeconfig --name N``: prints that kubeconfig (a dry run writes no file);
- ``kind load docker-image --name N IMAGE...``: appends ``N IMAGE`` to ``loads.log``
  (nothing is loaded anywhere: kwok runs no containers);
- ``kind delete cluster --name N --kubeconfig K``: removes the marker and K, logs
  ``N`` to ``deletes.log`` and, **simulating the cluster's disappearance** for a
  cluster this fake created, deletes through the API (kubectl) the namespace
  ``parity``, every object of every kind labelled ``parity.dev/managed=true``, and
  kubeadm's ``coredns`` objects (the next create makes them again). It waits until
  the namespace is gone, as a deleted cluster is gone when kind returns.

Every invocation is appended to ``$FAKE_KIND_STATE/calls.jsonl`` (its argv).
Standard library only; the API is reached with kubectl and the fixture's kubeconfig,
never with ``$KUBECONFIG`` or ``~/.kube``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VERSION = "kind v0.30.0 go1.24 linux/amd64"
LABEL = "parity.dev/managed=true"
NAMESPACE = "parity"

# kubeadm's default Corefile, copied from kubeadm (an oracle kept apart from
# src/parity/render/kind/cluster.py on purpose); test_control_plane.py reads it too.
KUBEADM_COREFILE = (Path(__file__).parent / "kubeadm-corefile").read_text(encoding="utf-8")

COREDNS_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
        "template": {
            "metadata": {"labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "containers": [{
                    "name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.3",
                    "args": ["-conf", "/etc/coredns/Corefile"],
                    "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns"}]}],
                "volumes": [{"name": "config-volume", "configMap": {
                    "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                 "effect": "NoSchedule"}],
            },
        },
    },
}


def state() -> Path:
    path = Path(os.environ["FAKE_KIND_STATE"])
    (path / "clusters").mkdir(parents=True, exist_ok=True)
    return path


def fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def flags(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """``--flag value`` / ``--flag=value`` options, and the positional rest."""
    opts, rest, i = {}, [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                key, value = arg[2:].split("=", 1)
            else:
                key, value = arg[2:], args[i + 1] if i + 1 < len(args) else ""
                i += 1
            opts[key] = value
        else:
            rest.append(arg)
        i += 1
    return opts, rest


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    argv = [os.environ.get("FAKE_KIND_KUBECTL", "kubectl"),
            f"--kubeconfig={os.environ['FAKE_KIND_UPSTREAM']}",
            f"--cache-dir={state() / 'kubectl-cache'}", *args]
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, env=env, timeout=180)
    if check and proc.returncode != 0:
        fail(f"kubectl {' '.join(args[:4])}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def marker(name: str) -> Path:
    return state() / "clusters" / name


def write_kubeconfig(name: str, path: Path) -> None:
    """The fixture's server and credentials, under kind's names for cluster ``name``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kubeconfig_text(name))
    path.chmod(0o600)


def kubeconfig_text(name: str) -> str:
    upstream = json.loads(kubectl("config", "view", "--raw", "--flatten", "--minify",
                                  "-o", "json").stdout)
    ctx = f"kind-{name}"
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": ctx, "cluster": upstream["clusters"][0]["cluster"]}],
        "users": [{"name": ctx, "user": upstream["users"][0]["user"]}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
        "current-context": ctx,
    }
    return json.dumps(config, indent=2) + "\n"  # JSON is YAML; kind writes YAML


def create_if_missing(obj: dict) -> None:
    proc = kubectl("create", "--field-manager=kubeadm", "-f", "-", input=json.dumps(obj),
                   check=False)
    if proc.returncode != 0 and "AlreadyExists" not in proc.stderr:
        fail(f"creating {obj['kind']}/{obj['metadata']['name']}: {proc.stderr.strip()}")


def kubeadm_objects() -> None:
    create_if_missing({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "coredns", "namespace": "kube-system"},
                       "data": {"Corefile": KUBEADM_COREFILE}})
    create_if_missing(COREDNS_DEPLOYMENT)


def label_node(config_text: str) -> None:
    """The node labels of the kind config (``ingress-ready``, which the edge controller
    selects), on the fixture's kwok node. Not parity's managed/stack labels: those
    would make simulate_disappearance delete the node every test module shares."""
    import yaml

    nodes = (yaml.safe_load(config_text or "{}") or {}).get("nodes") or [{}]
    labels = [f"{k}={v}" for k, v in sorted((nodes[0].get("labels") or {}).items())
              if not k.startswith("parity.dev/managed") and not k.startswith("parity.dev/stack")]
    if labels:
        kubectl("label", "nodes", "--all", "--overwrite", *labels)


def simulate_disappearance() -> None:
    kinds = kubectl("api-resources", "--verbs=list,delete", "-o", "name").stdout.split()
    kubectl("delete", ",".join(kinds), "--all-namespaces", "-l", LABEL, "--ignore-not-found",
            "--wait=false")
    kubectl("delete", "-n", "kube-system", "deployment/coredns", "configmap/coredns",
            "--ignore-not-found", "--wait=false")
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true",
            "--timeout=150s")


def main(argv: list[str]) -> None:
    st = state()
    with open(st / "calls.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(argv) + "\n")
    opts, rest = flags(argv)
    cmd = " ".join(rest[:2])
    name = opts.get("name", "kind")
    if rest[:1] == ["version"]:
        print(VERSION)
    elif cmd == "get clusters":
        names = sorted(p.name for p in (st / "clusters").iterdir())
        if names:
            print("\n".join(names))
        else:
            print("No kind clusters found.", file=sys.stderr)
    elif cmd == "create cluster":
        if marker(name).exists():
            fail(f'failed to create cluster: node(s) already exist for a cluster with the name "{name}"')
        print(f'Creating cluster "{name}" ...', file=sys.stderr)
        config = Path(opts["config"]).read_text() if opts.get("config") else ""
        (st / "configs").mkdir(exist_ok=True)
        (st / "configs" / f"{name}.yaml").write_text(config)
        kubeadm_objects()
        label_node(config)
        write_kubeconfig(name, Path(opts.get("kubeconfig") or Path.home() / ".kube" / "config"))
        marker(name).write_text(json.dumps({"api": True, "config": opts.get("config", "")}))
    elif cmd == "export kubeconfig":
        if not marker(name).exists():
            fail(f'could not locate any control plane nodes for cluster named "{name}"')
        write_kubeconfig(name, Path(opts.get("kubeconfig") or Path.home() / ".kube" / "config"))
    elif cmd == "get kubeconfig":
        if not marker(name).exists():
            fail(f'could not locate any control plane nodes for cluster named "{name}"')
        sys.stdout.write(kubeconfig_text(name))
    elif cmd == "load docker-image":
        if not marker(name).exists():
            fail(f'no nodes found for cluster "{name}"')
        with open(st / "loads.log", "a", encoding="utf-8") as fh:
            for image in rest[2:]:
                fh.write(f"{name} {image}\n")
    elif cmd == "delete cluster":
        print(f'Deleting cluster "{name}" ...', file=sys.stderr)
        m = marker(name)
        if m.exists():
            backed = json.loads(m.read_text() or "{}").get("api")
            if backed:
                simulate_disappearance()
            m.unlink()
            with open(st / "deletes.log", "a", encoding="utf-8") as fh:
                fh.write(name + "\n")
            kc = Path(opts["kubeconfig"]) if opts.get("kubeconfig") else None
            if kc and kc.exists():
                try:
                    current = json.loads(kc.read_text()).get("current-context")
                except ValueError:
                    current = None
                if current == f"kind-{name}":
                    kc.unlink()
    else:
        fail(f"fake kind: unsupported command: {' '.join(argv)}")


if __name__ == "__main__":
    main(sys.argv[1:])
