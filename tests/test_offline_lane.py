"""The offline parity lane passes on the default stack and fails closed when any
one of its checks is broken (the input each check sees is corrupted in turn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity import cli, offline
from parity.render import kind as kind_render

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def default_rows(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("lane")
    for name in ("base", "overlays", "images"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("local"))
    rows, _ = offline.run(root, environ={})
    return rows


def test_default_stack_passes_every_check(default_rows, compose_cli) -> None:
    failed = [(r.target, r.check, r.problems[:3]) for r in default_rows if not r.ok]
    assert failed == []
    checks = {(r.target, r.check) for r in default_rows}
    for target in ("kind:1", "kind:2", "kind:3"):
        for check in ("kubernetes-validate --strict 1.31.0", "Gateway API v1.4.0 CRD schemas",
                      "kind v1alpha4 cluster config", "cross-reference lint",
                      "yamllint (default rules)", "render (byte-identical twice)"):
            assert (target, check) in checks
    for target in ("compose:1", "compose:2", "compose:3"):
        assert (target, "docker compose config --quiet") in checks
    for phase in (1, 2, 3):
        assert (f"compose~kind:{phase}", "parity diff (no contract drift)") in checks
    # every other image profile is checked too, named with its profile
    assert {t for t, _ in checks} >= {f"{m}:{n}:offline" for m in ("compose", "kind")
                                      for n in (1, 2, 3)}


def test_a_fault_in_another_image_profile_fails_the_lane(repo_copy: Path) -> None:
    offline_yaml = repo_copy / "overlays" / "images" / "offline.yaml"
    offline_yaml.write_text(offline_yaml.read_text().replace(
        "image: parity-offline/registry:2.8-bookworm", "image: parity-offline/nats:2.9-bookworm"))
    failing = _failing(repo_copy)
    assert failing and all(t.endswith(":offline") for t, _ in failing), failing


def _failing(root: Path) -> set[tuple[str, str]]:
    rows, _ = offline.run(root, environ={})
    return {(r.target, r.check) for r in rows if not r.ok}


def _corrupt_kind(monkeypatch, fn) -> None:
    real = kind_render.render_kind

    def broken(stack, ctx):
        files = real(stack, ctx)
        if stack.phase == 2:
            files = fn(dict(files))
        return files

    monkeypatch.setattr(kind_render, "render_kind", broken)


def test_contract_drift_fails_the_lane(repo_copy: Path) -> None:
    (repo_copy / "overlays/modes/kind.yaml").write_text(
        "services:\n  api:\n    env:\n      DATABASE_NAME: other\n")
    assert _failing(repo_copy) == {(f"compose~kind:{p}{profile}", "parity diff (no contract drift)")
                                   for p in (1, 2, 3) for profile in ("", ":offline")}


def test_accepted_drift_passes_the_lane_and_is_counted(repo_copy: Path) -> None:
    (repo_copy / "overlays/modes/kind.yaml").write_text(
        "services:\n  api:\n    env:\n      DATABASE_NAME: other\n")
    policy = repo_copy / "base" / "parity-policy.yaml"
    policy.write_text(policy.read_text() + "accepted:\n  - id: db-name\n    path: "
                      "services.api.env.DATABASE_NAME\n    reason: r\n    until: 2099-01-01\n")
    rows, _ = offline.run(repo_copy, environ={})
    diffs = [r for r in rows if r.check == "parity diff (no contract drift)"]
    assert all(r.ok for r in diffs) and len(diffs) == 6   # 3 phases x 2 image profiles
    assert all(r.detail.endswith(", 1 accepted") for r in diffs)


@pytest.mark.parametrize("case,check", [
    ("unknown-field", "kubernetes-validate --strict 1.31.0"),
    ("bad-httproute", "Gateway API v1.4.0 CRD schemas"),
    ("bad-kind-config", "kind v1alpha4 cluster config"),
    ("broken-selector", "cross-reference lint"),
    ("yaml-style", "yamllint (default rules)"),
])
def test_each_kind_check_fails_when_its_input_is_broken(case, check, repo_copy, monkeypatch):
    def corrupt(files):
        text = files["manifests.yaml"]
        if case == "unknown-field":
            files["manifests.yaml"] = text.replace("readinessProbe:", "readinesProbe:", 1)
        elif case == "bad-httproute":
            files["manifests.yaml"] = text.replace("type: PathPrefix", "type: Prefix", 1)
        elif case == "bad-kind-config":
            files["kind-config.yaml"] = files["kind-config.yaml"].replace(
                "listenAddress: 127.0.0.1", "listenAddress: 0.0.0.0", 1)
        elif case == "broken-selector":
            files["manifests.yaml"] = text.replace(
                "  selector:\n    app.kubernetes.io/name: api\n",
                "  selector:\n    app.kubernetes.io/name: apx\n", 1)
        else:
            files["manifests.yaml"] = text.replace("kind: Namespace", "kind:   Namespace", 1)
        return files

    _corrupt_kind(monkeypatch, corrupt)
    failing = _failing(repo_copy)
    assert ("kind:2", check) in failing
    # only the broken phase fails, and only checks that look at what was broken
    assert {t for t, _ in failing} == {"kind:2", "kind:2:offline"}
    assert {c for _, c in failing} <= {check, "cross-reference lint",
                                       "kubernetes-validate --strict 1.37.0"}


def test_compose_config_failure_fails_the_lane(repo_copy, monkeypatch, compose_cli) -> None:
    from parity.render import compose as compose_render

    real = compose_render.render_compose

    def broken(stack, ctx):
        files = dict(real(stack, ctx))
        if stack.phase == 1:
            files["docker-compose.yaml"] = files["docker-compose.yaml"].replace(
                "interval: 5s", "interval: fast", 1)
        return files

    monkeypatch.setattr(compose_render, "render_compose", broken)
    assert ("compose:1", "docker compose config --quiet") in _failing(repo_copy)


def test_validate_offline_exit_code(repo_copy: Path) -> None:
    (repo_copy / "overlays/modes/kind.yaml").write_text(
        "services:\n  web:\n    image: parity/web:9\n")
    text, code = cli.validate_offline(repo_copy)
    assert code == 1
    assert "FAIL compose~kind:1 parity diff (no contract drift):\n  services.web.image: " \
           "parity/web:0.1.0 -> parity/web:9 (rule (none))" in text
