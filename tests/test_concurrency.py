"""Several parity commands of one checkout at once (issue #14's "Must show"):
eight processes run what ``up`` does without an engine — render, the secret
values, the local CA and the edge certificate, under the environment lock — and
the checkout ends consistent: one CA, the key matches the certificate, the leaf
verifies against the CA, every rendered file complete. Then: a second command
fails (exit 3) naming the holder, and a lock of a process that died blocks no one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parity import cli, lock, tls
from parity.errors import PrerequisiteMissing

SRC = str(Path(__file__).resolve().parent.parent / "src")

#: One up-equivalent. compose: the real ComposeLane.up through cli.up (so the
#: environment lock too) with only its engine steps replaced; kind: cli.up with a
#: KindLane whose up renders and checks the TLS material (the rest needs a
#: cluster); render: ``inv render`` to .parity/build; tls: the CA and certificate.
WORKER = r"""
import hashlib, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
root, job, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
from parity import cli, lock, tls
from parity.lifecycle.compose import ComposeLane
from parity.lifecycle.kind import KindLane

lock.WAIT_SECONDS = 60
for name in ("preflight", "images", "start", "wait_ready"):
    setattr(ComposeLane, name, lambda self: "no engine in this test")

def kind_up(self):
    self.render()
    tls.ensure(self.state, self.stack.domain)
    return {}
KindLane.up = kind_up
sel = cli.selection("kind" if job == "kind" else "compose", 1)
lane = cli.lane(root, sel, quiet=True)          # the model loads before the race
(root / f"ready-{job}-{id(lane)}-{time.time_ns()}").write_text("")
while not go.exists():
    time.sleep(0.005)
if job in ("compose", "kind"):
    cli.up(root, sel)
elif job == "render":
    cli.render(root, sel)
material = tls.ensure(root / ".parity", lane.stack.domain)
print(json.dumps({"ca": hashlib.sha256(material.ca_pem).hexdigest(),
                  "cert": hashlib.sha256(material.cert_pem).hexdigest()}))
"""

JOBS = ["compose", "compose", "kind", "kind", "render", "render", "tls", "tls"]


def _run_at_once(root: Path, jobs: list[str]) -> list[subprocess.CompletedProcess]:
    go = root / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), job, str(go), SRC],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for job in jobs]
    # start together once every worker has loaded its model (each says so)
    deadline = time.monotonic() + 60
    while len(list(root.glob("ready-*"))) < len(jobs) and time.monotonic() < deadline \
            and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    go.write_text("")
    out = []
    for p, job in zip(procs, jobs):
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess([job], p.returncode, stdout, stderr))
    return out


def test_eight_ups_at_once_leave_one_consistent_ca_certificate_and_render(repo_copy) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from parity import model
    from parity.render import RenderContext, default_out, render

    root = repo_copy
    results = _run_at_once(root, JOBS)
    for r in results:
        assert r.returncode == 0, f"{r.args[0]} worker failed:\n{r.stderr[-2000:]}"
    seen = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]
    assert len({s["ca"] for s in seen}) == 1, "the workers saw more than one CA"
    assert len({s["cert"] for s in seen}) == 1, "the workers saw more than one certificate"

    state = root / ".parity"
    ca_crt, ca_key = tls.ca_paths(state)
    crt, key = tls.cert_paths(state)
    ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    assert hashlib.sha256(ca_crt.read_bytes()).hexdigest() == seen[0]["ca"]
    assert hashlib.sha256(crt.read_bytes()).hexdigest() == seen[0]["cert"]
    leaf = x509.load_pem_x509_certificate(crt.read_bytes())

    def spki(k):
        return k.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)

    assert spki(serialization.load_pem_private_key(ca_key.read_bytes(), None).public_key()) \
        == spki(ca.public_key()), "ca.key does not match ca.crt"
    assert spki(serialization.load_pem_private_key(key.read_bytes(), None).public_key()) \
        == spki(leaf.public_key()), "tls.key does not match tls.crt"
    assert tls.cert_problem(leaf, ca, "parity.localhost") == ""   # signed by the CA, SANs
    assert crt.read_bytes().endswith(ca_crt.read_bytes())          # the chain names the CA

    for mode in ("compose", "kind"):
        sel = cli.selection(mode, 1)
        out = default_out(root, mode, 1)
        expected = render(model.load(root, sel).stack, RenderContext.for_output(root, out))
        for name, text in expected.items():
            assert (out / name).read_text(encoding="utf-8") == text, f"{mode}: {name}"
    # secret values: one per key, and the env files agree with them
    from parity import secrets

    stack = model.load(root, cli.selection("compose", 1)).stack
    assert secrets.write_env_files(stack, state) == []
    assert not list(state.rglob("*.tmp")), "temporary files were left behind"
    assert not list((state / "locks").glob("*.json")), "a holder record was left behind"


HOLDER = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from parity import lock
with lock.environment(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(root: Path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), mode, SRC, "up"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_up_fails_with_exit_3_naming_the_holder(repo_copy, monkeypatch) -> None:
    import socket

    from parity.lifecycle.compose import ComposeLane

    monkeypatch.setattr(lock, "WAIT_SECONDS", 0.5)
    touched = []
    monkeypatch.setattr(ComposeLane, "up", lambda self: touched.append("up") or {})
    monkeypatch.setattr(ComposeLane, "down",
                        lambda self, dry_run=False, volumes=False: touched.append(("down", dry_run)) or "ok")
    holder = _holder(repo_copy, "compose")
    try:
        sel = cli.selection("compose", 1)
        for command in (lambda: cli.up(repo_copy, sel), lambda: cli.down(repo_copy, sel)):
            with pytest.raises(lock.Busy) as info:
                command()
            err = info.value
            assert isinstance(err, PrerequisiteMissing) and err.exit_code == 3
            text = err.render()
            assert f"the compose environment of this checkout ({repo_copy.resolve()}) is busy" \
                in text
            assert f"(pid {holder.pid} on {socket.gethostname()}, since " in text
            assert f"`{Path(sys.executable).name} -c " in text  # the holder's command line
            assert f"kill {holder.pid}" in text and "there is nothing to delete" in text
        assert touched == [], "the lifecycle ran without the lock"
        # read-only commands need no lock; the other mode's environment is free
        assert cli.down(repo_copy, sel, dry_run=True) == "ok"
        assert touched == [("down", True)]
        cli.render(repo_copy, cli.selection("kind", 1))
        with lock.environment(repo_copy, "kind", wait=0):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_of_a_process_that_died_blocks_no_one(repo_copy) -> None:
    holder = _holder(repo_copy, "compose")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock.holder(repo_copy / ".parity", "compose")["pid"] == holder.pid  # record stays
    started = time.monotonic()
    with lock.environment(repo_copy, "compose", wait=0):
        assert lock.holder(repo_copy / ".parity", "compose")["pid"] == os.getpid()
    assert time.monotonic() - started < 1


def test_the_lock_is_reentrant_within_one_process(repo_copy) -> None:
    with lock.environment(repo_copy, "compose", wait=0):
        with lock.environment(repo_copy, "compose", wait=0):
            pass
        assert lock.holder(repo_copy / ".parity", "compose")["pid"] == os.getpid()
    assert lock.holder(repo_copy / ".parity", "compose") is None
