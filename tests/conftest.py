"""Shared fixtures. Golden files are rewritten only with ``pytest --update-golden``;
review the diff before committing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def _tree(path: Path) -> dict[str, tuple]:
    if not path.exists():
        return {}
    return {str(p): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in [path, *path.rglob("*")]}


#: The user's ~/.kube, fixed before any test moves HOME.
USER_KUBE = Path.home() / ".kube"


def pytest_configure(config):
    """kubectl and client-go keep their discovery and HTTP cache in ~/.kube/cache
    unless told otherwise: for everything the tests run, that is a directory of the
    session's own (parity's subprocesses get one in .parity/kind/ themselves)."""
    import os
    import tempfile

    if not hasattr(config, "workerinput"):
        config._parity_kubecache = tempfile.mkdtemp(prefix="parity-test-kubecache-")
        os.environ["KUBECACHEDIR"] = config._parity_kubecache


def pytest_unconfigure(config):
    cache = getattr(config, "_parity_kubecache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _users_kube_dir_untouched():
    """No test, and nothing parity runs for one, writes the user's ~/.kube."""
    before = _tree(USER_KUBE)
    yield
    after = _tree(USER_KUBE)
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"the tests changed {USER_KUBE}: {changed[:5]}"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden files from the current output")


#: ``make test`` sets it: a test that would skip because something it needs is
#: missing (a Debian package, Chromium, the engine) fails instead, with the reason:
#: make test installs what its tests need (.ci/install-test-deps.sh), so a skip there
#: is a broken install, not a pass. A skip that is right on any machine says why with
#: the prefix below (reported by -rs, never turned into a failure).
REQUIRE_ALL = "REQUIRE_ALL_TESTS"
ALLOWED_SKIP = "not applicable:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get(REQUIRE_ALL) != "1":
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if reason.startswith(ALLOWED_SKIP):
        return
    report.outcome = "failed"
    report.longrepr = (f"would have skipped, but {REQUIRE_ALL}=1 (make test) requires every "
                       f"test to run: {reason}\n(make test installs the test packages with "
                       ".ci/install-test-deps.sh and .ci/install-browser.sh; run it as root, "
                       "or install what is named above)")


@pytest.fixture
def update_golden(request) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def golden(update_golden):
    """``golden(path, text)``: compare ``text`` with the golden file (or rewrite it)."""

    def check(rel: str, text: str) -> None:
        path = GOLDEN / rel
        if update_golden:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"missing golden file {path}; run pytest --update-golden"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"output differs from {path}; if intended, run " \
                                 "pytest --update-golden and review the diff"

    return check


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """A copy of the stack inputs (base/, overlays/, apps/) to break on purpose."""
    dst = tmp_path / "repo"
    dst.mkdir()
    for name in ("base", "overlays", "images", "apps"):
        src = ROOT / name
        if src.exists():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("local"))
    return dst


def _compose_available() -> bool:
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def compose_cli() -> list[str]:
    """The real Compose v2 plugin. CI installs it (.ci/install-docker.sh); a missing
    plugin fails the test rather than skipping it silently."""
    if not _compose_available():
        pytest.fail("docker compose v2 is not installed; run .ci/install-docker.sh")
    return ["docker", "compose"]
