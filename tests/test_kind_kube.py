"""parity's only road to a Kubernetes API (parity.lifecycle.kind.kube), without a cluster: a
stand-in API server (tests/fakeapi.py, a real HTTPS listener on 127.0.0.1) answers,
fails or hangs; counting listeners stand for proxies and foreign servers that must
see no connection.

- every refusal of parity's kubeconfig, with its exact message, before any connection;
- an API server that does not answer (refused, closed, TLS, hang, 5xx, not an API
  server) is a bounded, exit-3 error naming the server and the next step;
- proxy variables and the kubernetes client's own caches are never used;
- the environment of the kind and kubectl subprocesses parity runs;
- ``down --dry-run`` writes nothing anywhere;
- ``inv doctor``'s look at the user's kubeconfig copes with anything ``$KUBECONFIG``
  names."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from fakeapi import CountingListener, FakeAPI, closed_port, kubeconfig_text
from parity.lifecycle.kind import kube as kubeaccess
from parity.lifecycle.kind import kubeconfig
from parity.errors import InputError, PrerequisiteMissing
from parity.lifecycle.kind import Kube, check_kubeconfig, subprocess_env

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "parity-parity"
REGEN = ("  next: parity writes this file itself: remove it (rm {p}); the next inv up or "
         "inv down --mode kind exports it anew from kind")


def _yaml(server: str, cluster_extra: str = "", user_extra: str = "",
          current: str = "kind-parity-parity") -> str:
    """A kubeconfig as kind writes it (YAML, fixed line numbers: clusters at 2-6,
    contexts 7-11, current-context 12, users 15-...)."""
    return (f"apiVersion: v1\n"
            f"clusters:\n"
            f"- cluster:\n"
            f"    insecure-skip-tls-verify: true\n"
            f"    server: {server}\n"
            f"{cluster_extra}"
            f"  name: kind-parity-parity\n"
            f"contexts:\n"
            f"- context:\n"
            f"    cluster: kind-parity-parity\n"
            f"    user: kind-parity-parity\n"
            f"  name: kind-parity-parity\n"
            f"current-context: {current}\n"
            f"kind: Config\n"
            f"preferences: {{}}\n"
            f"users:\n"
            f"- name: kind-parity-parity\n"
            f"  user:\n"
            f"    token: t\n"
            f"{user_extra}")


@pytest.fixture
def listener():
    """Stands for the server (or proxy) a refused kubeconfig names: must see nothing."""
    lst = CountingListener()
    yield lst
    lst.close()


@pytest.fixture
def no_tmp_writes(tmp_path, monkeypatch):
    """The temporary directory, moved to an empty one the test inspects."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


# --------------------------------------------------------------------------- refusals

def _refusal(path: Path) -> str:
    with pytest.raises(InputError) as exc:
        check_kubeconfig(path, CLUSTER)
    assert exc.value.exit_code == 2
    with pytest.raises(InputError):
        Kube(path, CLUSTER)
    return exc.value.render()


def test_an_exec_credential_plugin_is_refused_and_never_run(tmp_path, listener):
    marker = tmp_path / "plugin-ran"
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml(f"https://127.0.0.1:{listener.port}", user_extra=(
        "    exec:\n"
        "      apiVersion: client.authentication.k8s.io/v1\n"
        "      command: sh\n"
        f"      args: [-c, 'touch {marker}']\n")))
    assert _refusal(p) == (
        f"{p}:19: users[kind-parity-parity].user.exec: refusing 'exec' in parity's "
        "kubeconfig: a credential plugin runs a command on every use; parity's kind cluster "
        "authenticates with the client certificate kind writes\n" + REGEN.format(p=p))
    assert not marker.exists() and listener.count == 0


def test_an_exec_plugin_of_a_user_the_context_does_not_use_is_refused_too(tmp_path):
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml("https://127.0.0.1:6443") + (
        "- name: other\n"
        "  user:\n"
        "    exec: {command: aws}\n"))
    assert _refusal(p).splitlines()[0] == (
        f"{p}:21: users[other].user.exec: refusing 'exec' in parity's kubeconfig: a "
        "credential plugin runs a command on every use; parity's kind cluster "
        "authenticates with the client certificate kind writes")


def test_an_auth_provider_is_refused(tmp_path, listener):
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml(f"https://127.0.0.1:{listener.port}", user_extra=(
        "    auth-provider:\n"
        "      name: oidc\n"
        "      config: {idp-issuer-url: 'https://login.example.com'}\n")))
    assert _refusal(p) == (
        f"{p}:19: users[kind-parity-parity].user.auth-provider: refusing 'auth-provider' "
        "in parity's kubeconfig: an auth provider fetches credentials from outside the "
        "cluster; parity's kind cluster authenticates with the client certificate kind "
        "writes\n" + REGEN.format(p=p))
    assert listener.count == 0


def test_a_proxy_url_is_refused(tmp_path, listener):
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml("https://127.0.0.1:6443",
                       cluster_extra=f"    proxy-url: {listener.url}\n"))
    assert _refusal(p) == (
        f"{p}:6: clusters[kind-parity-parity].cluster.proxy-url: refusing 'proxy-url' in "
        "parity's kubeconfig: parity's API server is on this machine's loopback and is "
        "reached directly, never through a proxy\n" + REGEN.format(p=p))
    assert listener.count == 0


@pytest.mark.parametrize("server", [
    "https://10.1.2.3:6443", "https://kubernetes.example.com:443", "http://127.0.0.1:6443",
    "https://127.0.0.1", "https://user:pw@127.0.0.1:6443", "https://localhost.example.com:6443",
    "https://127.0.0.1:99999", "'[not a url'"])
def test_a_server_that_is_not_https_on_loopback_is_refused(tmp_path, server):
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml(server))
    shown = server.strip("'")
    assert _refusal(p) == (
        f"{p}:5: clusters[kind-parity-parity].cluster.server: refusing to reach {shown}: the "
        "parity cluster's API server is https on 127.0.0.1\n"
        "  next: recreate the file with inv up --mode kind")


@pytest.mark.parametrize("server", ["https://127.0.0.1:6443", "https://localhost:6443",
                                    "https://[::1]:6443"])
def test_a_loopback_server_is_accepted(tmp_path, server):
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml(server))
    assert check_kubeconfig(p, CLUSTER)["current-context"] == "kind-parity-parity"


def test_a_foreign_current_context_or_none_is_refused(tmp_path):
    p = tmp_path / "kubeconfig"
    p.write_text(_yaml("https://127.0.0.1:6443", current="prod-admin"))
    assert _refusal(p).splitlines()[0] == (
        f"{p}:12: refusing to use context 'prod-admin': parity only talks to its own kind "
        "cluster, context 'kind-parity-parity'")
    p.write_text("apiVersion: v1\nkind: Config\n")
    assert _refusal(p).splitlines()[0] == (
        f"{p}:1: refusing to use a kubeconfig without a current-context: parity only talks "
        "to its own kind cluster, context 'kind-parity-parity'")


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _huge(p: Path) -> None:
    with open(p, "wb") as fh:
        fh.truncate(kubeconfig.MAX_KUBECONFIG_BYTES + 1)


@pytest.mark.parametrize("make, message", [
    (_fifo, "parity's kubeconfig is a FIFO (named pipe), not a regular file"),
    (lambda p: p.mkdir(), "parity's kubeconfig is a directory, not a regular file"),
    (lambda p: p.symlink_to("/dev/zero"),
     "parity's kubeconfig is a character device, not a regular file"),
    (_huge, "parity's kubeconfig is 1048577 bytes, more than the 1048576 bytes parity reads "
            "from a kubeconfig"),
    (lambda p: p.write_bytes(b"current-context: \xff\xfe\n"),
     "parity's kubeconfig is not UTF-8 text (invalid start byte)"),
], ids=["fifo", "directory", "dev-zero", "huge", "not-utf8"])
def test_a_kubeconfig_that_is_not_a_small_file_is_refused_without_blocking(tmp_path, make,
                                                                          message):
    p = tmp_path / "kubeconfig"
    make(p)
    out: list = []
    t = threading.Thread(target=lambda: out.append(_refusal(p)), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading the kubeconfig blocked"
    assert out == [f"{p}: {message}\n" + REGEN.format(p=p)]


@pytest.mark.parametrize("text, message", [
    ("clusters: [\n", ":2: malformed YAML: expected the node content, but found "
                      "'<stream end>'"),
    ("- a\n- b\n", ":1: the top level must be a mapping, not a list"),
    ("just a string\n", ":1: the top level must be a mapping, not a scalar"),
    ("current-context: kind-parity-parity\nclusters: 5\n",
     ":2: clusters: must be a list, not a scalar"),
    ("current-context: kind-parity-parity\nclusters: [5]\n",
     ":2: clusters[0]: must be a mapping, not a scalar"),
    ("current-context: kind-parity-parity\ncontexts: []\n",
     ":2: contexts: has no context named 'kind-parity-parity'"),
], ids=["malformed", "list", "scalar", "clusters-not-list", "cluster-not-mapping",
        "no-context"])
def test_a_malformed_kubeconfig_is_refused_with_its_line(tmp_path, text, message):
    p = tmp_path / "kubeconfig"
    p.write_text(text)
    assert _refusal(p) == f"{p}{message}\n" + REGEN.format(p=p)


# --------------------------------------------------------------------------- no answer

UNREACHABLE_HINT = (
    "  next: is the cluster running? docker ps -a --filter name=parity-parity-control-plane "
    "shows its node (start a stopped one: docker start parity-parity-control-plane); make "
    "kind-parity-status shows the rest; recreate it with make kind-parity-down and make "
    "kind-parity-up")


def _unanswered(tmp_path: Path, text: str, seconds: float = 10.0) -> PrerequisiteMissing:
    p = tmp_path / "kubeconfig"
    p.write_text(text)
    started = time.monotonic()
    with pytest.raises(PrerequisiteMissing) as exc:
        Kube(p, CLUSTER).get("v1", "ConfigMap", "parity-cluster", "kube-system")
    assert time.monotonic() - started < seconds
    assert exc.value.exit_code == 3
    return exc.value


def test_a_stopped_cluster_is_exit_3_naming_the_server_and_the_next_step(tmp_path):
    server = f"https://127.0.0.1:{closed_port()}"
    err = _unanswered(tmp_path, kubeconfig_text(server))
    assert err.render() == (
        f"the parity cluster's API server {server} (from {tmp_path / 'kubeconfig'}) does not "
        "answer: connection refused\n" + UNREACHABLE_HINT)


def test_a_listener_that_closes_every_connection(tmp_path, listener):
    err = _unanswered(tmp_path, kubeconfig_text(f"https://127.0.0.1:{listener.port}"))
    assert err.message.endswith("does not answer: the connection was closed during the TLS "
                                "handshake")
    assert listener.count <= 1 + kubeaccess.CONNECT_RETRIES + 1  # bounded retries


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeaccess, "READ_SECONDS", 0.5)
    api = FakeAPI("hang")
    try:
        err = _unanswered(tmp_path, api.kubeconfig(), seconds=5)
    finally:
        api.close()
    assert err.message.endswith("does not answer: no answer within 0 s") or \
        err.message.endswith("does not answer: no answer within 1 s")


def test_a_server_of_another_certificate_authority(tmp_path):
    api, other = FakeAPI(), FakeAPI()
    try:
        err = _unanswered(tmp_path, kubeconfig_text(api.url, ca=other.cert))
    finally:
        api.close()
        other.close()
    assert err.message.endswith(
        "does not answer: its TLS certificate is not signed by the kubeconfig's certificate "
        "authority (another server, or the file of an earlier cluster)")


@pytest.mark.parametrize("code, reason", [(503, "Service Unavailable"),
                                          (500, "Internal Server Error")])
def test_a_server_error_is_exit_3(tmp_path, code, reason):
    api = FakeAPI(f"status:{code}")
    try:
        err = _unanswered(tmp_path, api.kubeconfig())
    finally:
        api.close()
    assert err.render() == (
        f"the parity cluster's API server {api.url} answered discovery with {code} {reason}: "
        "etcdserver: leader changed\n"
        "  next: it may still be starting or be overloaded: try again in a minute; make "
        "kind-parity-status shows the node")


def test_something_that_is_not_an_api_server(tmp_path):
    api = FakeAPI("garbage")
    try:
        err = _unanswered(tmp_path, api.kubeconfig())
    finally:
        api.close()
    assert err.render() == (
        f"{api.url} (from {tmp_path / 'kubeconfig'}) answered, but not as a Kubernetes API "
        "server\n  next: another program listens on the cluster's port: stop it, or recreate "
        "the cluster with make kind-parity-down and make kind-parity-up")


def test_credentials_of_an_earlier_cluster_are_exit_2(tmp_path):
    api = FakeAPI("status:401")
    p = tmp_path / "kubeconfig"
    p.write_text(api.kubeconfig())
    try:
        with pytest.raises(InputError) as exc:
            Kube(p, CLUSTER).list("v1", "ConfigMap", "kube-system")
    finally:
        api.close()
    assert exc.value.render() == (
        f"the parity cluster's API server {api.url} refused the credentials in {p} (401 "
        f"Unauthorized)\n  next: the file belongs to an earlier cluster: parity writes this "
        f"file itself: remove it (rm {p}); the next inv up or inv down --mode kind exports "
        "it anew from kind")


def test_apply_and_delete_end_in_parity_errors_too(tmp_path):
    server = f"https://127.0.0.1:{closed_port()}"
    p = tmp_path / "kubeconfig"
    p.write_text(kubeconfig_text(server))
    kube = Kube(p, CLUSTER)
    for call in (lambda: kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "x", "namespace": "y"}}),
                 lambda: kube.delete("v1", "ConfigMap", "x", "y"),
                 lambda: kube.list("v1", "Node")):
        with pytest.raises(PrerequisiteMissing, match="does not answer: connection refused"):
            call()


# --------------------------------------------------------------------------- direct, in memory

def test_proxy_variables_are_ignored_for_parity_cluster(tmp_path, monkeypatch, listener):
    """HTTPS_PROXY (and friends, in either case) would send requests for the loopback
    API server to the proxy, NO_PROXY=localhost not covering 127.0.0.1: the proxy must
    see no connection and the API server every request."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, listener.url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    api = FakeAPI()
    p = tmp_path / "kubeconfig"
    p.write_text(api.kubeconfig())
    try:
        kube = Kube(p, CLUSTER)
        assert kube.get("v1", "ConfigMap", "parity-cluster", "kube-system")["data"] == \
            {"kind-config.yaml": "kind: Cluster\n"}
        assert kube.get("v1", "ConfigMap", "nothing", "kube-system") is None
    finally:
        api.close()
    assert listener.count == 0
    assert "GET /api/v1/namespaces/kube-system/configmaps/parity-cluster" in api.requests


def test_nothing_is_written_nor_read_from_the_temp_dir(tmp_path, no_tmp_writes):
    """The client key stays in memory, and discovery is not cached in (nor read back
    from) $TMPDIR/osrcp-<md5>.json, a path any local user can plant."""
    api = FakeAPI()
    planted = no_tmp_writes / f"osrcp-{hashlib.md5(api.url.encode()).hexdigest()}.json"
    planted.write_text('{"library_version": "planted"}')
    p = tmp_path / "kubeconfig"
    p.write_text(api.kubeconfig())
    try:
        kube = Kube(p, CLUSTER)
        assert kube.get("v1", "ConfigMap", "parity-cluster", "kube-system") is not None
        kube.close()
    finally:
        api.close()
    assert sorted(x.name for x in no_tmp_writes.iterdir()) == [planted.name]
    assert planted.read_text() == '{"library_version": "planted"}'


# --------------------------------------------------------------------------- subprocesses

def test_subprocess_env_names_only_parity_file_and_no_proxy():
    base = {"PATH": "/bin", "HTTPS_PROXY": "http://p:3128", "http_proxy": "http://p:3128",
            "ALL_PROXY": "socks5://p:1080", "NO_PROXY": "corp.example", "KUBECONFIG": "/a:/b",
            "KUBECACHEDIR": "/home/me/.kube/cache", "HOME": "/home/me"}
    env = subprocess_env("/s/.parity/kind/kubeconfig", "/s/.parity/kind/cache", base=base)
    assert env == {"PATH": "/bin", "HOME": "/home/me",
                   "KUBECONFIG": "/s/.parity/kind/kubeconfig",
                   "KUBECACHEDIR": "/s/.parity/kind/cache"}
    create = subprocess_env("/k", "/c", base=base, keep_proxy=True)
    assert create["HTTPS_PROXY"] == "http://p:3128" and create["ALL_PROXY"] == "socks5://p:1080"
    assert create["NO_PROXY"] == "corp.example,127.0.0.1,localhost,::1"
    assert create["no_proxy"] == "127.0.0.1,localhost,::1"


def _fake_kind(bindir: Path, kubeconfig: str | None = None) -> Path:
    """A stand-in kind (not the real one) that records its environment and says the
    parity cluster exists; ``get kubeconfig`` prints ``kubeconfig``."""
    bindir.mkdir(parents=True, exist_ok=True)
    (bindir / "kubeconfig.txt").write_text(kubeconfig or "")
    script = bindir / "kind"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
here = {str(bindir)!r}
with open(os.path.join(here, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
args = " ".join(sys.argv[1:3])
if sys.argv[1:2] == ["version"]:
    print("kind v0.30.0 go1.24 linux/amd64")
elif args == "get clusters":
    print("parity-parity")
elif args == "get kubeconfig":
    sys.stdout.write(open(os.path.join(here, "kubeconfig.txt")).read())
elif args == "export kubeconfig":
    path = sys.argv[sys.argv.index("--kubeconfig") + 1]
    open(path, "w").write(open(os.path.join(here, "kubeconfig.txt")).read())
else:
    sys.exit("fake kind: unsupported " + " ".join(sys.argv[1:]))
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _calls(bindir: Path) -> list[dict]:
    import json

    path = bindir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _lane(root: Path):
    from parity import model
    from parity.model import Selection
    from parity.lifecycle import UI
    from parity.lifecycle.kind import KindLane

    return KindLane(root, model.load(root, Selection("kind", 1)), UI(quiet=True))


def test_kind_runs_with_parity_kubeconfig_its_cache_and_no_proxy(tmp_path, repo_copy,
                                                                monkeypatch, listener):
    bindir = tmp_path / "bin"
    _fake_kind(bindir)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HTTPS_PROXY", listener.url)
    monkeypatch.setenv("https_proxy", listener.url)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "users-config"))
    lane = _lane(repo_copy)
    assert lane.cluster_exists()
    env = _calls(bindir)[-1]["env"]
    assert not {k for k in env if k.upper() in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")}
    assert env["KUBECONFIG"] == str(repo_copy / ".parity" / "kind" / "kubeconfig")
    assert env["KUBECACHEDIR"] == str(repo_copy / ".parity" / "kind" / "cache")
    create = lane.kind_env(create=True)
    assert create["HTTPS_PROXY"] == listener.url
    assert create["NO_PROXY"].split(",")[-3:] == ["127.0.0.1", "localhost", "::1"]


def test_kubectl_version_runs_without_proxy_or_the_users_kubeconfig(tmp_path, monkeypatch):
    from parity.lifecycle.kind import KindLane

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").write_text(
        f"#!{sys.executable}\nimport json, os\n"
        f"open({str(tmp_path / 'env.json')!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        "print(json.dumps({'clientVersion': {'gitVersion': 'v1.33.1'}}))\n")
    (bindir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "users-config"))
    assert KindLane.check_kubectl() == (1, 33, 1)
    import json

    env = json.loads((tmp_path / "env.json").read_text())
    assert "HTTPS_PROXY" not in env
    assert env["KUBECONFIG"] == os.devnull and env["KUBECACHEDIR"] == os.devnull


# --------------------------------------------------------------------------- dry run

def _tree(path: Path) -> dict[str, tuple]:
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in [path, *path.rglob("*")]}


def test_down_dry_run_writes_nothing_anywhere(tmp_path, repo_copy, monkeypatch,
                                              no_tmp_writes):
    """The cluster exists but parity's kubeconfig is gone: the dry run reads the
    cluster's record through the kubeconfig kind prints, and writes no file: not in
    .parity, not in HOME, not in the temp dir."""
    api = FakeAPI()
    bindir = tmp_path / "bin"
    _fake_kind(bindir, api.kubeconfig())
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    (repo_copy / ".parity" / "secrets").mkdir(parents=True)
    before = (_tree(repo_copy / ".parity"), _tree(home), _tree(no_tmp_writes))
    try:
        out = _lane(repo_copy).down(dry_run=True)
    finally:
        api.close()
    assert out == "would remove (nothing removed yet): cluster parity-parity"
    assert (_tree(repo_copy / ".parity"), _tree(home), _tree(no_tmp_writes)) == before
    assert [c["argv"][:2] for c in _calls(bindir)] == [["version"], ["get", "clusters"],
                                                       ["get", "kubeconfig"]]
    assert "GET /api/v1/namespaces/kube-system/configmaps/parity-cluster" in api.requests


def test_down_dry_run_refuses_a_foreign_kubeconfig_kind_prints(tmp_path, repo_copy,
                                                               monkeypatch, listener):
    bindir = tmp_path / "bin"
    _fake_kind(bindir, _yaml(f"https://127.0.0.1:{listener.port}",
                             cluster_extra="    proxy-url: http://127.0.0.1:3128\n"))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(InputError) as exc:
        _lane(repo_copy).down(dry_run=True)
    assert exc.value.render().splitlines()[0] == (
        "kind get kubeconfig --name parity-parity:6: clusters[kind-parity-parity].cluster."
        "proxy-url: refusing 'proxy-url' in parity's kubeconfig: parity's API server is on "
        "this machine's loopback and is reached directly, never through a proxy")
    assert listener.count == 0
    assert not (repo_copy / ".parity").exists()


# --------------------------------------------------------------------------- doctor

def _broken_kubeconfigs(tmp: Path) -> dict[str, Path]:
    out = {}
    out["missing"] = tmp / "missing"
    out["directory"] = tmp / "dir"
    out["directory"].mkdir()
    out["fifo"] = tmp / "fifo"
    os.mkfifo(out["fifo"])
    out["dev-zero"] = Path("/dev/zero")
    out["huge"] = tmp / "huge"
    with open(out["huge"], "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    out["malformed"] = tmp / "malformed"
    out["malformed"].write_text("current-context: [\n")
    out["list"] = tmp / "list"
    out["list"].write_text("- a\n- b\n")
    out["scalar"] = tmp / "scalar"
    out["scalar"].write_text("hello\n")
    out["not-utf8"] = tmp / "not-utf8"
    out["not-utf8"].write_bytes(b"current-context: \xff\n")
    out["odd-context"] = tmp / "odd-context"
    out["odd-context"].write_text("current-context: [a, b]\n")
    out["alias-bomb"] = tmp / "alias-bomb"
    out["alias-bomb"].write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9)))
    out["deep"] = tmp / "deep"
    out["deep"].write_text("[" * 100000 + "]" * 100000 + "\n")
    return out


def _within(fn, seconds: float = 20.0):
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked"
    return out[0]


def test_doctor_copes_with_anything_kubeconfig_names(tmp_path, monkeypatch):
    from parity.lifecycle.kind import checks, kubeconfig

    broken = _broken_kubeconfigs(tmp_path)
    good = tmp_path / "good"
    good.write_text("current-context: prod-eu\n")
    for name, path in broken.items():
        monkeypatch.setenv("KUBECONFIG", str(path))
        current, skipped = _within(kubeconfig.user_current_context)
        assert current is None, name
        finding = _within(lambda: checks.kube_context(ROOT, CLUSTER))
        assert finding.status == "ok"
    # a list ($KUBECONFIG=a:b:…): kubectl's rule, the first file that sets one
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(
        [str(p) for p in broken.values()] + [str(good), "", str(tmp_path / "later")]))
    current, skipped = _within(kubeconfig.user_current_context)
    assert current == "prod-eu"
    assert skipped[:3] == [f"{broken['directory']} is a directory, not a regular file",
                           f"{broken['fifo']} is a FIFO (named pipe), not a regular file",
                           "/dev/zero is a character device, not a regular file"]
    finding = checks.kube_context(ROOT, CLUSTER)
    assert finding.detail.startswith(
        "your current context 'prod-eu' is never used; parity talks only to "
        ".parity/kind/kubeconfig (context kind-parity-parity, on loopback); skipped "
        f"(unreadable, and unused by parity): {broken['directory']} is a directory")


def test_doctor_reads_home_kube_config_when_kubeconfig_is_unset_or_empty(tmp_path,
                                                                         monkeypatch):
    from parity.lifecycle.kind import kubeconfig

    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("current-context: \"dev\\u0007\\nx\"\n")
    monkeypatch.setenv("HOME", str(home))
    for value in (None, ""):
        if value is None:
            monkeypatch.delenv("KUBECONFIG", raising=False)
        else:
            monkeypatch.setenv("KUBECONFIG", value)
        assert kubeconfig.user_current_context() == ("dev??x", [])
    monkeypatch.setenv("KUBECONFIG", os.pathsep)  # a list of no files: kubectl reads none
    assert kubeconfig.user_current_context() == (None, [])


# --------------------------------------------------------------------------- catalogue

CATALOGUED = [
    "refusing 'exec' in parity's kubeconfig: a credential plugin runs a command on every use; "
    "parity's kind cluster authenticates with the client certificate kind writes",
    "refusing 'auth-provider' in parity's kubeconfig: an auth provider fetches credentials "
    "from outside the cluster",
    "refusing 'proxy-url' in parity's kubeconfig: parity's API server is on this machine's "
    "loopback and is reached directly, never through a proxy",
    "the parity cluster's API server is https on 127.0.0.1",
    "refusing to use a kubeconfig without a current-context",
    "parity's kubeconfig is a FIFO (named pipe), not a regular file",
    "more than the 1048576 bytes parity reads from a kubeconfig",
    "parity's kubeconfig is not UTF-8 text",
    "contexts: has no context named 'kind-parity-parity'",
    "does not answer: connection refused",
    "the connection was closed during the TLS handshake",
    "its TLS certificate is not signed by the kubeconfig's certificate authority (another "
    "server, or the file of an earlier cluster)",
    "answered discovery with 503 Service Unavailable",
    "answered, but not as a Kubernetes API server",
    "refused the credentials in .parity/kind/kubeconfig (401 Unauthorized)",
    "down --dry-run reads the record of the cluster parity-parity through kind, which is not "
    "installed; nothing was built or removed",
]


@pytest.mark.parametrize("text", CATALOGUED)
def test_every_refusal_is_in_the_error_catalogue(text):
    assert text in (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")


def test_a_dry_run_without_kind_builds_nothing(tmp_path, repo_copy, monkeypatch):
    from parity.lifecycle.kind import kindcli

    monkeypatch.setattr(kindcli, "find", lambda root: kindcli.Found(None, None, "to build",
                                                                    buildable=True))
    lane = _lane(repo_copy)
    monkeypatch.setattr(type(lane), "node_containers", lambda self: [{"Names": "x"}])
    with pytest.raises(PrerequisiteMissing) as exc:
        lane.down(dry_run=True)
    assert exc.value.message == (
        "down --dry-run reads the record of the cluster parity-parity through kind, which is "
        "not installed; nothing was built or removed")
    assert not (repo_copy / ".parity").exists()


def test_a_transient_answer_is_asked_again(monkeypatch) -> None:
    """503 / 429 / "storage is (re)initializing" right after a CRD is Established are
    retried a few times (the k8s suite met it on a fresh machine); others are not."""
    from parity.lifecycle.kind import kube as kubeaccess

    monkeypatch.setattr("time.sleep", lambda s: None)

    class Busy(Exception):
        status = 503
        body = '{"message": "storage is (re)initializing"}'

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise Busy()
        return "ok"

    assert kubeaccess._retrying(flaky) == "ok" and len(calls) == 3

    class Refused(Exception):
        status = 422

    def refused():
        calls.append(1)
        raise Refused()

    calls.clear()
    with pytest.raises(Refused):
        kubeaccess._retrying(refused)
    assert len(calls) == 1
