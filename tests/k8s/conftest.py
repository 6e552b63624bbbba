"""A real Kubernetes control plane for tests, from binaries built by
``testbin/build.sh`` (docs/testbin.md).

The session fixture :func:`control_plane` starts, on 127.0.0.1 and random free
ports, with everything under pytest's tmp directory:

- etcd (3.5, data dir in tmp, ``--unsafe-no-fsync``: a test cluster);
- kube-apiserver (serving certificate, client CA and service-account key made here
  with ``cryptography``; the test user authenticates with a client certificate in
  ``system:masters``; ``--authorization-mode=RBAC``;
  ``--service-cluster-ip-range=10.96.0.0/16``; no cloud provider);
- kube-controller-manager (all default controllers, admin credentials);
- kube-scheduler (kwok simulates nodes and pods but does not bind pods);
- kwok, managing only nodes annotated ``kwok.x-k8s.io/node=fake``, and one such
  Node, so pods are scheduled and reach Running/Ready (Jobs' pods Succeeded) by
  kwok's default stages. Images never matter: no container runs.

Then it installs the Gateway API standard CRDs (v1.4.0: the ones the kind lane
vendors and installs, ``src/parity/schemas/gateway-api-v1.4.0/crds``) and
waits for them to be Established, and gives the cluster what kind gives every
cluster: a default StorageClass ``standard`` (WaitForFirstConsumer) and a stand-in
for its local-path provisioner (:class:`_FakeProvisioner`: a hostPath PV for each
claim the scheduler picked a node for; no data is ever written), so StatefulSets'
volume claims bind.

It writes its own kubeconfig in tmp and never reads or writes ``~/.kube`` or
``$KUBECONFIG`` (kubectl gets ``--kubeconfig`` and ``--cache-dir`` explicitly).
Every process runs in its own process group with a parent-death signal, and is
stopped at the end of the session. A missing testbin FAILS the tests (CI builds
it): run ``bash testbin/build.sh``.
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "testbin" / "build.sh"
BUILD_HINT = "bash testbin/build.sh  (or: nox -s testbin; docs/testbin.md)"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

START_BUDGET_S = 60.0  # issue 6: the fixture starts in under 60 s once built
FAKE_NODE = "kwok-node-0"
KWOK_SELECTOR = "kwok.x-k8s.io/node=fake"
SERVICE_CIDR = "10.96.0.0/16"
STORAGE_CLASS = "standard"  # kind's default StorageClass
KIND_PROVISIONER = "rancher.io/local-path"  # kind's provisioner, which this stands in for
KUBECTL = os.environ.get("PARITY_KUBECTL", "kubectl")
#: The Gateway API CRDs the kind lane installs (vendored, SHA-256 pinned), so the
#: tests meet exactly the CRDs a real cluster gets.
from parity.render.edge import CRD_DIR as GATEWAY_API_CRDS  # noqa: E402


# --------------------------------------------------------------------------- testbin

def testbin_dir() -> Path:
    """The build output directory (the same rule as build.sh, which computes it)."""
    try:
        out = subprocess.run(["bash", str(BUILD_SH), "--print-dir"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"cannot locate the k8s testbin ({BUILD_SH} --print-dir): {exc}")
    return Path(out)


def require_testbin() -> Path:
    out = testbin_dir()
    missing = [b for b in BINARIES if not os.access(out / "bin" / b, os.X_OK)]
    if not (out / ".complete").is_file() or missing:
        pytest.fail(f"the k8s testbin is not built (expected in {out}; missing: "
                    f"{', '.join(missing) or 'the .complete stamp'}). Build it: {BUILD_HINT}. "
                    "CI builds it when missing; these tests fail rather than skip.",
                    pytrace=False)
    return out


# --------------------------------------------------------------------------- PKI

def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class _Pki:
    dir: Path
    ca_key: object = None
    ca_cert: x509.Certificate | None = None

    def __post_init__(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(_name("parity-test-ca"))
            .issuer_name(_name("parity-test-ca")).public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self.ca_key, hashes.SHA256()))
        self.write("ca.crt", _pem_cert(self.ca_cert))

    def write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def issue(self, name: str, cn: str, *, org: str | None = None, server: bool = False,
              client: bool = False, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = (
            x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(self.ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        if dns or ips:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
                critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return self.write(f"{name}.crt", _pem_cert(cert)), self.write(f"{name}.key", _pem_key(key))

    def service_account_keys(self) -> tuple[Path, Path]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return self.write("sa.key", _pem_key(key)), self.write("sa.pub", pub)


def _local_session(ca: Path | None, cert: tuple[str, str] | None) -> requests.Session:
    """A session for 127.0.0.1 that ignores the environment: with trust_env, requests
    lets REQUESTS_CA_BUNDLE override a session's ``verify`` and would route through
    any HTTP(S)_PROXY."""
    s = requests.Session()
    s.trust_env = False
    s.verify = str(ca) if ca else True
    s.cert = cert
    return s


# --------------------------------------------------------------------------- processes

def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


_libc = None


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when pytest dies (even by SIGKILL), so a crashed
    session leaves no control plane behind."""
    global _libc
    try:
        _libc = _libc or ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after ``grace`` s."""
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(5)


# --------------------------------------------------------------------------- the helper

class StartError(Exception):
    pass


@dataclass
class ControlPlane:
    """What the tests get: the kubeconfig, the server URL, ``kubectl`` and an API
    accessor (``requests``, authenticated as the cluster admin)."""

    workdir: Path
    bindir: Path
    crd_dir: Path
    kubeconfig: Path
    server: str
    ca_file: Path
    client_cert: tuple[str, str]
    procs: dict[str, _Proc] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    start_seconds: float = 0.0
    provisioner: "_FakeProvisioner | None" = None
    node_name: str = FAKE_NODE
    start_budget: float = START_BUDGET_S
    _session: requests.Session | None = None

    # -- API
    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = _local_session(self.ca_file, self.client_cert)
        return self._session

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request to the API server, e.g. ``api("GET", "/api/v1/nodes")``."""
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.server + path, **kwargs)

    def get(self, path: str) -> dict | None:
        """The object at ``path``, or None if it does not exist."""
        r = self.api("GET", path)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def create(self, path: str, obj: dict) -> dict:
        r = self.api("POST", path, json=obj)
        if r.status_code >= 400:
            raise AssertionError(f"POST {path}: {r.status_code} {r.text}")
        return r.json()

    # -- kubectl
    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 180) -> subprocess.CompletedProcess:
        """The machine's kubectl against this cluster only (explicit --kubeconfig and
        --cache-dir; $KUBECONFIG is removed from its environment)."""
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        argv = [KUBECTL, f"--kubeconfig={self.kubeconfig}",
                f"--cache-dir={self.workdir / 'kubectl-cache'}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def apply(self, text: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        """Server-side apply as the parity field manager."""
        return self.kubectl("apply", "--server-side", "--field-manager", "parity", *extra, "-f", "-",
                            input=text, check=check)

    # -- waiting
    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float = 120,
                 interval: float = 0.25):
        """Poll ``predicate`` until it returns a truthy value (returned); fail with
        ``what`` and the last value after ``timeout`` s, or as soon as a control-plane
        process has exited."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = predicate()
            except (requests.RequestException, AssertionError) as exc:
                last = exc
            else:
                if last:
                    return last
            dead = [p for p in self.procs.values() if not p.alive()]
            if dead:
                raise StartError(self.dead_report(dead, what))
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
            time.sleep(interval)

    def dead_report(self, dead: list[_Proc], what: str) -> str:
        parts = [f"{p.name} exited with {p.popen.returncode} while waiting for {what}; "
                 f"log {p.log}:\n{p.tail()}" for p in dead]
        return "\n\n".join(parts)

    def logs(self, name: str, lines: int = 60) -> str:
        return self.procs[name].tail(lines)


# --------------------------------------------------------------------------- kind-like storage

class _FakeProvisioner(threading.Thread):
    """Stands in for kind's local-path provisioner: for every claim of the
    ``standard`` class that the scheduler has picked a node for, create a hostPath PV
    pre-bound to it (the controller-manager's PV controller completes the binding);
    delete PVs that were released. No volume is ever used: kwok runs no containers."""

    def __init__(self, cp: ControlPlane):
        super().__init__(name="fake-provisioner", daemon=True)
        self.cp = cp
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.provisioned: list[str] = []

    def run(self) -> None:
        session = _local_session(self.cp.ca_file, self.cp.client_cert)
        while not self.stop_event.wait(0.3):
            try:
                self.tick(session)
            except requests.RequestException as exc:
                self.errors.append(str(exc))

    def tick(self, s: requests.Session) -> None:
        base = self.cp.server
        claims = s.get(f"{base}/api/v1/persistentvolumeclaims", timeout=10).json().get("items", [])
        for pvc in claims:
            meta, spec = pvc["metadata"], pvc["spec"]
            node = meta.get("annotations", {}).get("volume.kubernetes.io/selected-node")
            if (pvc.get("status", {}).get("phase") != "Pending" or spec.get("volumeName")
                    or spec.get("storageClassName") != STORAGE_CLASS or not node):
                continue
            name = f"pvc-{meta['uid']}"
            pv = {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {
                    "pv.kubernetes.io/provisioned-by": KIND_PROVISIONER}},
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": STORAGE_CLASS,
                    "volumeMode": spec.get("volumeMode", "Filesystem"),
                    "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "namespace": meta["namespace"], "name": meta["name"],
                                 "uid": meta["uid"]},
                    "hostPath": {"path": f"/var/local-path-provisioner/{name}",
                                 "type": "DirectoryOrCreate"},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
                },
            }
            r = s.post(f"{base}/api/v1/persistentvolumes", json=pv, timeout=10)
            if r.status_code == 201:
                self.provisioned.append(f"{meta['namespace']}/{meta['name']}")
            elif r.status_code != 409:
                self.errors.append(f"create PV {name}: {r.status_code} {r.text[:300]}")
        volumes = s.get(f"{base}/api/v1/persistentvolumes", timeout=10).json().get("items", [])
        for pv in volumes:
            if (pv.get("status", {}).get("phase") == "Released"
                    and pv["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by")
                    == KIND_PROVISIONER):
                s.delete(f"{base}/api/v1/persistentvolumes/{pv['metadata']['name']}", timeout=10)


# --------------------------------------------------------------------------- start / stop

def _kubeconfig(server: str, ca: Path, cert: Path, key: Path) -> str:
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "parity-test", "cluster": {
            "server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": "parity-admin", "user": {
            "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "parity-test", "context": {"cluster": "parity-test", "user": "parity-admin"}}],
        "current-context": "parity-test",
    })


def _start(cp: ControlPlane, name: str, argv: list[str], env: dict | None = None) -> _Proc:
    log = cp.workdir / "logs" / f"{name}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "wb") as fh:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                 cwd=cp.workdir, env=env or _clean_env(cp), start_new_session=True,
                                 preexec_fn=_die_with_parent)
    proc = _Proc(name, popen, log)
    cp.procs[name] = proc
    return proc


def _clean_env(cp: ControlPlane) -> dict:
    """No KUBECONFIG, and HOME inside the work dir: kwok reads ~/.kwok/kwok.yaml."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    home = cp.workdir / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    return env


def _healthz(url: str, ca: Path, cert: tuple[str, str] | None = None) -> Callable[[], bool]:
    session = _local_session(ca, cert)

    def check() -> bool:
        r = session.get(url, timeout=5)
        return r.status_code == 200 and r.text.strip() == "ok"
    return check


def _phase(cp: ControlPlane, label: str, t0: float) -> float:
    now = time.monotonic()
    cp.timings[label] = round(now - t0, 2)
    return now


def start_control_plane(workdir: Path, bindir: Path, crd_dir: Path,
                        procs: dict[str, _Proc]) -> ControlPlane:
    """Start everything; every process started is in ``procs`` as soon as it runs,
    so the caller can stop them if this fails half-way."""
    t_start = t = time.monotonic()
    pki = _Pki(workdir / "pki")
    ca = pki.dir / "ca.crt"
    serving = pki.issue("serving", "127.0.0.1", server=True,
                        dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                             "kubernetes.default.svc.cluster.local"),
                        ips=("127.0.0.1", "10.96.0.1"))
    admin = pki.issue("admin", "parity-admin", org="system:masters", client=True)
    sa_key, sa_pub = pki.service_account_keys()
    etcd_client, etcd_peer, api_port, kcm_port, sched_port = free_ports(5)
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(_kubeconfig(server, ca, *admin))
    kubeconfig.chmod(0o600)
    cp = ControlPlane(workdir=workdir, bindir=bindir, crd_dir=crd_dir, kubeconfig=kubeconfig,
                      server=server, ca_file=ca, client_cert=(str(admin[0]), str(admin[1])),
                      procs=procs)
    t = _phase(cp, "pki", t)
    b = lambda n: str(bindir / n)  # noqa: E731

    etcd_url = f"http://127.0.0.1:{etcd_client}"
    _start(cp, "etcd", [
        b("etcd"), "--name=parity-test", f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-cluster=parity-test=http://127.0.0.1:{etcd_peer}",
        "--unsafe-no-fsync", "--log-level=warn"])
    plain = _local_session(None, None)
    cp.wait_for("etcd /health", lambda: plain.get(f"{etcd_url}/health", timeout=5)
                .json().get("health") == "true", timeout=30)
    t = _phase(cp, "etcd", t)

    _start(cp, "kube-apiserver", [
        b("kube-apiserver"), f"--etcd-servers={etcd_url}",
        "--advertise-address=127.0.0.1", "--bind-address=127.0.0.1", f"--secure-port={api_port}",
        f"--cert-dir={workdir / 'apiserver-certs'}",
        f"--tls-cert-file={serving[0]}", f"--tls-private-key-file={serving[1]}",
        f"--client-ca-file={ca}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC", "--allow-privileged=true", "--profiling=false"])
    cp.wait_for("kube-apiserver /readyz", _healthz(f"{server}/readyz", ca, cp.client_cert), timeout=50)
    t = _phase(cp, "kube-apiserver", t)

    common = [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
              f"--authorization-kubeconfig={kubeconfig}", "--bind-address=127.0.0.1",
              f"--tls-cert-file={serving[0]}", f"--tls-private-key-file={serving[1]}",
              "--leader-elect=false", "--profiling=false"]
    _start(cp, "kube-controller-manager", [
        b("kube-controller-manager"), *common, f"--secure-port={kcm_port}",
        "--controllers=*", "--use-service-account-credentials=false",
        f"--root-ca-file={ca}", f"--service-account-private-key-file={sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--cluster-name=parity-test"])
    _start(cp, "kube-scheduler", [b("kube-scheduler"), *common, f"--secure-port={sched_port}"])
    _start(cp, "kwok", [
        b("kwok"), f"--kubeconfig={kubeconfig}", "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_SELECTOR}",
        "--cidr=10.244.0.0/16", "--node-ip=10.89.0.2",
        # Heartbeat through a Lease renewed every 10 s, as a kubelet does. Without a
        # config file kwok's default is 0: status-only heartbeats ~55 s apart, longer
        # than the node controller's 50 s grace, so the node flaps NotReady.
        "--node-lease-duration-seconds=40"])

    # While those start: the CRDs, the node and kind's default StorageClass.
    cp.kubectl("apply", "--server-side", "--field-manager=parity-testbin", "-f", str(crd_dir))
    annotation_key, annotation_value = KWOK_SELECTOR.split("=")
    cp.create("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": FAKE_NODE, "annotations": {annotation_key: annotation_value},
                     "labels": {"kubernetes.io/hostname": FAKE_NODE, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "type": "kwok"}},
        "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
    })
    cp.create("/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": KIND_PROVISIONER, "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"})
    crds = sorted(yaml.safe_load(p.read_text())["metadata"]["name"] for p in crd_dir.glob("*.yaml"))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=40s", *(f"crd/{n}" for n in crds))
    t = _phase(cp, "crds+node+storageclass", t)

    cp.wait_for("kube-controller-manager /healthz", _healthz(f"https://127.0.0.1:{kcm_port}/healthz", ca))
    cp.wait_for("kube-scheduler /healthz", _healthz(f"https://127.0.0.1:{sched_port}/healthz", ca))
    cp.wait_for(f"node {FAKE_NODE} Ready (kwok)", lambda: _node_ready(cp, FAKE_NODE), timeout=40)
    # The controller-manager's serviceaccount controller makes "default" in each
    # namespace; pods cannot be created before it exists.
    cp.wait_for("serviceaccount default/default", lambda: cp.get(
        "/api/v1/namespaces/default/serviceaccounts/default"), timeout=40)
    t = _phase(cp, "controllers+kwok", t)

    cp.provisioner = _FakeProvisioner(cp)
    cp.provisioner.start()
    cp.start_seconds = round(time.monotonic() - t_start, 2)
    return cp


def _node_ready(cp: ControlPlane, name: str) -> bool:
    node = cp.get(f"/api/v1/nodes/{name}") or {}
    conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
    taints = [t["key"] for t in node.get("spec", {}).get("taints", []) or []]
    return conds.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints


def _stop_all(procs: dict[str, _Proc]) -> list[str]:
    """Stop every process, in reverse start order (each one's whole process group);
    return the names of any that survived (there should be none)."""
    for proc in reversed(list(procs.values())):
        proc.stop()
    leftovers = []
    for p in procs.values():
        try:
            os.killpg(p.popen.pid, 0)
            leftovers.append(p.name)
        except ProcessLookupError:
            pass
    return leftovers


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> ControlPlane:
    """A running control plane (see the module docstring), shared by the session."""
    out = require_testbin()
    if shutil.which(KUBECTL) is None:
        pytest.fail(f"kubectl ({KUBECTL}) is not on PATH", pytrace=False)
    workdir = tmp_path_factory.mktemp("k8s")
    procs: dict[str, _Proc] = {}
    try:
        cp = start_control_plane(workdir, out / "bin", GATEWAY_API_CRDS, procs)
    except (StartError, AssertionError, requests.RequestException, subprocess.SubprocessError) as exc:
        _stop_all(procs)
        logs = "\n".join(f"  {p.log}" for p in procs.values())
        pytest.fail(f"the k8s control plane did not start: {exc}\nlogs:\n{logs}", pytrace=False)
    except BaseException:
        _stop_all(procs)
        raise
    print(f"\nk8s control plane up in {cp.start_seconds:.1f}s at {cp.server} "
          f"(kubeconfig {cp.kubeconfig}); phases: {json.dumps(cp.timings)}")
    yield cp
    cp.provisioner.stop_event.set()
    cp.provisioner.join(5)
    leftovers = _stop_all(procs)
    assert not leftovers, f"control-plane processes survived the session: {leftovers}"
