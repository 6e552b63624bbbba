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
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    problems = []
    if missing:
        problems.append(f"not received: {', '.join(missing)}")
    if extra:
        problems.append(f"received but not in the contract: {', '.join(extra)}")
    if differ:
        problems.append(f"values differ from the render: {', '.join(differ)}")
    assert not problems, "; ".join(problems)
    return f"{len(want)} env keys match by hash"
