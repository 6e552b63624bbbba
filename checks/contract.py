"""Contract: what the running API actually received equals the rendered contract
(same env keys; each value's hash equals the hash of the rendered value). Only
hashes travel; no value is printed."""

from parity.model import SecretRef


def check_api_received_the_rendered_contract(t) -> str:
    r = t.http.get(t.url("api", "/contract"), timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}"
    got = r.json()["env"]
    want = {}
    for key, value in t.env("api").items():
        if isinstance(value, SecretRef):
            value = t.secret(value.secret, value.key)
        want[key] = t.sha256(value)
    problems = compare(want, got, set(got) - set(want))
    assert not problems, "; ".join(problems)
    return f"{len(want)} env keys match by hash"


def compare(want: dict, got: dict, extra: set) -> list[str]:
    """Problems between the rendered env and the received one (both key -> hash);
    ``extra``: the received keys the contract does not explain. Names only."""
    problems = []
    missing = sorted(set(want) - set(got))
    differ = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    if missing:
        problems.append(f"not received: {', '.join(missing)}")
    if differ:
        problems.append(f"values differ from the render: {', '.join(differ)}")
    if extra:
        problems.append(f"received but not in the contract: {', '.join(sorted(extra))}")
    return problems


def check_every_service_received_its_rendered_contract(t) -> str:
    """Each running service's process was started with exactly its rendered env:
    every contract key with the rendered value (compared by hash), and nothing else
    but what its image sets itself and what the runtime adds on its own (kind: the
    API server's KUBERNETES_* and HOSTNAME). Read from the runtime (Docker's
    container config, containerd's OCI spec on the kind node), not from the app."""
    from parity.model import SecretRef

    checked, jobs, problems = [], [], []
    for name, svc in sorted(t.stack.services.items()):
        if svc.role == "edge":
            continue  # realised differently per mode (decision 0007): transport
        got = t.delivered(name)
        if got is None:
            if svc.workload == "job":
                jobs.append(name)
                continue
            problems.append(f"{name}: no running container")
            continue
        want = {}
        for key, value in t.env(name).items():
            if isinstance(value, SecretRef):
                value = t.secret(value.secret, value.key)
            want[key] = t.sha256(value)
        received = {k: t.sha256(v) for k, v in got.env.items()}
        extra = {k for k in set(received) - set(want) - got.platform_keys
                 if got.image_env.get(k) != got.env[k]}
        bad = compare(want, received, extra)
        if bad:
            problems.append(f"{name} ({got.where}): " + "; ".join(bad))
        checked.append(name)
    assert not problems, "; ".join(problems)
    note = f"; jobs not running now (not inspected): {', '.join(jobs)}" if jobs else ""
    return f"{len(checked)} services received exactly their rendered env{note}"
