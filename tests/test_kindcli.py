"""Which kind the lane runs (src/parity/lifecycle/kind/kindcli.py): kind on PATH when new
enough, else parity's build of the pinned kind, else one to build when Go is here."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from parity.errors import PrerequisiteMissing
from parity.lifecycle.kind import kindcli

ROOT = Path(__file__).resolve().parent.parent


def fake_kind(bindir: Path, version: str, name: str = "kind") -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text(f"#!/bin/sh\necho 'kind {version} go1.24 linux/amd64'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    pin = tmp_path / kindcli.MODULE_DIR
    pin.mkdir(parents=True)
    (pin / "go.mod").write_text((ROOT / kindcli.MODULE_DIR / "go.mod").read_text())
    return tmp_path


def test_the_pin_is_read_from_the_module(repo):
    assert kindcli.pinned_version(repo) == "v0.30.0"


def test_kind_on_path_is_used_when_new_enough(repo, tmp_path, monkeypatch):
    fake_kind(tmp_path / "bin", "v0.31.2")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    found = kindcli.find(repo)
    assert (found.path, found.version, found.how) == (str(tmp_path / "bin" / "kind"),
                                                      (0, 31, 2), "PATH")


def test_an_old_kind_is_passed_over_for_parity_build(repo, tmp_path, monkeypatch):
    fake_kind(tmp_path / "bin", "v0.24.0")
    built = fake_kind(kindcli.cached_path(repo).parent, "v0.30.0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    found = kindcli.find(repo)
    assert (found.path, found.how) == (str(built), "parity's build")


def test_without_kind_and_go_the_error_names_both_fixes(repo, tmp_path, monkeypatch):
    fake_kind(tmp_path / "bin", "v0.24.0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # an old kind, no go
    found = kindcli.find(repo)
    assert found.path is None and not found.buildable
    with pytest.raises(PrerequisiteMissing) as exc:
        kindcli.ensure(repo)
    assert exc.value.exit_code == 3
    assert exc.value.render() == (
        f"kind 0.24.0 on PATH ({tmp_path / 'bin' / 'kind'}) is older than 0.30.0; the kind "
        "lane needs kind 0.30.0 or newer\n"
        "  next: install Go (https://go.dev/doc/install) and parity builds the pinned kind "
        "v0.30.0 itself on the next up, or: go install sigs.k8s.io/kind@v0.30.0 (or a "
        "release binary: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")


def test_with_go_it_is_buildable_and_nothing_is_built_by_find(repo, tmp_path, monkeypatch):
    go = tmp_path / "bin" / "go"
    go.parent.mkdir()
    go.write_text("#!/bin/sh\nexit 1\n")
    go.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    found = kindcli.find(repo)
    assert found.buildable and found.path is None
    assert not kindcli.cached_path(repo).exists()
