"""Values that reach rendered files and the secret store are validated before
anything is written; secrets never reach output; writes are atomic and an OSError
is an exit-3 message, not a traceback (issue #14)."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from parity import cli, fsio, model, secrets
from parity.model import templates
from parity.errors import InputError, ParityError

STATE = ".parity"


def sel(mode="compose", phase=1, sets=()):
    return cli.selection(mode, phase, None, list(sets), {})


def load(root: Path, mode="compose", phase=1, sets=()):
    return model.load(root, sel(mode, phase, sets))


def files_under(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- internal_dns

@pytest.mark.parametrize("pattern", ["{x}", "{0}", "{service", "{service}}", "{}",
                                     "{service.__class__}", "{service!r}",
                                     "{service};return 200 pwned;#", "{service} x",
                                     "{service}.'a'", '{service}."a"', "{service}.-a",
                                     "{service}..svc", "{service}.", "{service}.A_B"])
def test_internal_dns_config_refuses_what_render_cannot_do(repo_copy, pattern) -> None:
    with pytest.raises(InputError) as exc:
        cli.config(repo_copy, sel(sets=[f"stack.internal_dns={pattern}"]))
    assert "stack.internal_dns" in exc.value.render()
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("pattern,api", [
    ("{service}", "api"), ("{service}.{namespace}.svc.cluster.local",
                           "api.parity.svc.cluster.local"),
    ("{service}-x.{namespace}", "api-x.parity")])
def test_internal_dns_placeholders_are_replaced_literally(repo_copy, pattern, api) -> None:
    stack = load(repo_copy, sets=[f"stack.internal_dns={pattern}"]).stack
    assert stack.transport.host("api") == api
    files = cli.render(repo_copy, sel(sets=[f"stack.internal_dns={pattern}"]))
    assert "compose phase 1" in files


def test_expand_dns_never_formats() -> None:
    # str.format would raise or evaluate; the pattern is validated before, and the
    # expansion itself interprets nothing but the two placeholders
    assert templates.expand_dns("{service}.{x}.{0}", "a", "b") == "a.{x}.{0}"
    assert templates.dns_pattern_problem("{service}.{namespace}") is None
    assert "unknown placeholder" in templates.dns_pattern_problem("{service}.{svc}")


def test_internal_dns_length_is_checked_with_the_real_service_names(repo_copy) -> None:
    pattern = "{service}." + ".".join(c * 60 for c in "abcd") + ".{namespace}"
    with pytest.raises(InputError, match="characters long"):
        load(repo_copy, sets=[f"stack.internal_dns={pattern}"])


def test_nginx_conf_holds_only_validated_names(repo_copy) -> None:
    from parity.render import RenderContext, render

    stack = load(repo_copy, sets=["stack.internal_dns={service}.{namespace}.internal"]).stack
    conf = render(stack, RenderContext())["edge/nginx.conf"]
    for line in conf.splitlines():
        if "set $upstream" in line:
            assert re.fullmatch(r"\s+set \$upstream http://[a-z0-9.-]+:[0-9]+;", line), line
        if "server_name" in line:
            assert re.fullmatch(r"\s+server_name [a-z0-9.-]+;", line), line


def test_route_path_nginx_would_need_quoted_is_refused_by_config(repo_copy) -> None:
    for path in ("/a;b", "/a b", "/a{b}", "/a$b", "/a'b", '/a"b', "/a#b", "/a/../b"):
        with pytest.raises(InputError, match=r"routes\[api\]\.path"):
            cli.config(repo_copy, sel(sets=[f"services.api.routes[api].path={path}"]))


# --------------------------------------------------------------------------- secret names

@pytest.mark.parametrize("key", ["..", ".", "..x", "a/b", "a b", "x" * 254])
def test_secret_keys_must_be_file_names_and_render_writes_nothing(repo_copy, key) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text() + f"  extra:\n    keys:\n      {json.dumps(key)}: "
                 "{generate: 16}\n      ok: {generate: 16}\n")
    with pytest.raises(InputError) as exc:
        cli.render(repo_copy, sel())
    assert "base/secrets.yaml:" in exc.value.render()
    assert not (repo_copy / STATE).exists()


def test_secret_key_with_a_trailing_line_feed_is_refused(repo_copy) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text() + '  extra:\n    keys:\n      "k\\n": {generate: 16}\n')
    with pytest.raises(InputError, match="is not a valid secret key"):
        load(repo_copy)


def test_secret_key_with_a_single_leading_dot_is_a_file_name(repo_copy) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text() + "  extra:\n    keys:\n      .hidden: {generate: 16}\n")
    load(repo_copy)


def test_secret_named_env_is_reserved(repo_copy) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text() + "  env:\n    keys:\n      api.env: {value: x}\n")
    with pytest.raises(InputError, match="the secret name 'env' is reserved"):
        cli.render(repo_copy, sel())
    assert not (repo_copy / STATE).exists()


# --------------------------------------------------------------------------- env delivery

def _stored(root: Path, secret: str, key: str, value: str) -> None:
    d = root / STATE / "secrets" / secret
    d.mkdir(parents=True, exist_ok=True)
    (d / key).write_bytes(value.encode("utf-8"))


@pytest.mark.parametrize("bad", ["zqline1\nREDIS_EXTRA=1", "zqtrailing\n", "zqcr\rzqx",
                                 "zqnul\0zqx", "zqcrlf\r\n"])
def test_stored_env_secret_that_an_env_file_cannot_carry_is_refused(repo_copy, bad) -> None:
    _stored(repo_copy, "redis", "password", bad)
    with pytest.raises(InputError) as exc:
        cli.render(repo_copy, sel())
    text = exc.value.render()
    assert "secret redis/password" in text and "as a file" in text
    assert "zq" not in text
    assert not (repo_copy / STATE / "build").exists()
    assert not (repo_copy / STATE / "secrets" / "env").exists()
    # the kind lane refuses the same value (it would deliver it, compose cannot)
    with pytest.raises(InputError, match="secret redis/password"):
        secrets.ensure(load(repo_copy, "kind").stack, repo_copy / STATE)


def test_declared_env_secret_with_a_line_break_is_refused_by_config(repo_copy) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text().replace("      password: {generate: 32}\n  keycloak-admin",
                                       '      password: {value: "a\\nB=c"}\n  keycloak-admin'))
    with pytest.raises(InputError) as exc:
        load(repo_copy)
    assert "secret redis/password" in exc.value.render()
    assert "a\nB=c" not in exc.value.render()


def test_secret_file_delivery_may_hold_line_breaks(repo_copy) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text() + '  pem:\n    keys:\n      key: {value: "-----BEGIN\\nx\\n"}\n')
    load(repo_copy)


TRICKY = "a#b 'q' \"dq\" =x= ${NOPE} $HOME \\n  ünï€ \t end "


def test_env_secret_reaches_compose_byte_identical(repo_copy, compose_cli) -> None:
    """compose's own parser reads the env file back to exactly the stored value,
    which is what the kind lane's Secret delivers."""
    _stored(repo_copy, "redis", "password", TRICKY)
    cli.render(repo_copy, sel())
    compose = repo_copy / STATE / "build" / "compose" / "phase1" / "docker-compose.yaml"
    proc = subprocess.run([*compose_cli, "-f", str(compose), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)["services"]["redis"]["environment"]
    got = [v for v in env.values() if "ünï€" in v]
    # `config` prints '$' escaped as '$$' so that its output can be read again
    assert got == [TRICKY.replace("$", "$$")]
    kind_values = secrets.values(repo_copy / STATE, load(repo_copy, "kind").stack.secrets["redis"])
    assert kind_values["password"] == TRICKY


def test_plain_env_with_nul_is_refused(repo_copy) -> None:
    with pytest.raises(InputError, match="NUL"):
        cli.config(repo_copy, sel(sets=['services.api.env.DATABASE_NAME="a\\0b"']))


# --------------------------------------------------------------------------- images

@pytest.mark.parametrize("ref", ["postgres:16", "quay.io/keycloak/keycloak:26.0.7",
                                 "localhost:5000/a/b:1", "a__b/c-d.e:x_Y.1",
                                 "kindest/node:v1@sha256:" + "a" * 64, "[::1]:5000/x",
                                 "x@sha512:" + "0" * 128])
def test_image_references_that_docker_accepts(ref) -> None:
    assert model.image_ref_problem(ref) is None


@pytest.mark.parametrize("ref", ["Redis:7", "redis:", ":7", "redis:7;x", "a b", "a//b",
                                 "-a", "a-", "redis@sha256:abc", "x@md5:" + "a" * 32,
                                 "redis:" + "t" * 129, "a" * 64, "x@sha256:" + "A" * 64,
                                 "../etc", "redis:7\n"])
def test_image_references_that_docker_refuses(ref) -> None:
    assert model.image_ref_problem(ref) is not None


def test_kind_runtime_images_are_checked(repo_copy) -> None:
    with pytest.raises(InputError, match=r"stack\.kind\.edge\.image"):
        load(repo_copy, "kind", sets=["stack.kind.edge.image=Traefik:v3"])


def test_build_context_through_a_symlink_out_of_the_repository(repo_copy, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (repo_copy / "apps" / "sneaky").symlink_to(outside)
    with pytest.raises(InputError) as exc:
        cli.render(repo_copy, sel(sets=["services.api.build.context=apps/sneaky"]))
    assert "--set services.api.build.context=apps/sneaky: services.api.build.context: " \
           "build context 'apps/sneaky' is outside the repository" in exc.value.render()
    (repo_copy / "apps" / "inner").symlink_to(outside / "Dockerfile")
    with pytest.raises(InputError, match="Dockerfile 'inner' is outside"):
        load(repo_copy, sets=["services.api.build.dockerfile=inner"])
    assert not (repo_copy / STATE).exists()


# --------------------------------------------------------------------------- writes

def _fail_on(monkeypatch, code: int, after: int = 0) -> None:
    """Make the (after+1)-th staged write of parity.fsio fail with ``code``."""
    real = os.fdopen
    count = {"n": 0}

    class Failing:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

        def write(self, data):
            raise OSError(code, os.strerror(code))

    def fake(fd, *a, **kw):
        fh = real(fd, *a, **kw)
        count["n"] += 1
        return Failing(fh) if count["n"] > after else fh

    monkeypatch.setattr(fsio.os, "fdopen", fake)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_render_on_a_full_or_read_only_disk_is_exit_3_and_writes_nothing(
        repo_copy, monkeypatch, code) -> None:
    _fail_on(monkeypatch, code, after=1)   # the first file is staged, the second fails
    with pytest.raises(ParityError) as exc:
        cli.render(repo_copy, sel())
    assert exc.value.exit_code == 3
    assert "cannot write" in exc.value.render() and "next:" in exc.value.render()
    assert files_under(repo_copy / STATE / "build") == []
    leftovers = [p for p in files_under(repo_copy / STATE) if p.endswith(".tmp")]
    assert leftovers == []


def test_a_failed_batch_keeps_the_old_files(repo_copy, monkeypatch) -> None:
    cli.render(repo_copy, sel())
    out = repo_copy / STATE / "build" / "compose" / "phase1"
    before = {n: (out / n).read_text() for n in files_under(out)}
    _fail_on(monkeypatch, errno.ENOSPC, after=1)
    with pytest.raises(ParityError):
        cli.render(repo_copy, sel(sets=["stack.domain=other.localhost"]))
    assert {n: (out / n).read_text() for n in files_under(out)} == before


def test_a_file_where_parity_needs_a_directory_is_exit_3(repo_copy) -> None:
    (repo_copy / STATE).mkdir()
    (repo_copy / STATE / "build").write_text("in the way")
    with pytest.raises(ParityError) as exc:
        cli.render(repo_copy, sel())
    assert exc.value.exit_code == 3 and "cannot write" in exc.value.render()


def test_tls_and_secret_store_writes_go_through_fsio(tmp_path, monkeypatch) -> None:
    from parity import tls

    _fail_on(monkeypatch, errno.EROFS)
    with pytest.raises(ParityError) as exc:
        tls.ensure_ca(tmp_path)
    assert exc.value.exit_code == 3
    # nothing but the lock file it held (parity.lock: empty, never data)
    assert [f for f in files_under(tmp_path) if not f.startswith("locks/")] == []


def test_no_module_writes_around_fsio() -> None:
    """Every writer of src/parity goes through parity.fsio (the vendoring script
    of the schemas is a developer tool, not part of a command)."""
    src = Path(__file__).resolve().parent.parent / "src" / "parity"
    offenders = []
    for f in src.rglob("*.py"):
        if f.name in ("fsio.py", "vendor_gateway_api.py"):
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.search(r"\.write_text\(|\.write_bytes\(|os\.replace\(|\.mkdir\(", line):
                offenders.append(f"{f.relative_to(src)}:{i}: {line.strip()}")
    # images/ builds root file systems in its own temporary tree (not .parity state)
    offenders = [o for o in offenders if not o.startswith(("images/", "browser.py:5"))]
    assert offenders == []


# --------------------------------------------------------------------------- masking

SHORT = "s3cr"


def _short_secret(root: Path) -> None:
    f = root / "base" / "secrets.yaml"
    f.write_text(f.read_text().replace("      username: {value: postgres}",
                                       f"      username: {{value: {SHORT}}}", 1))


@pytest.mark.parametrize("path", ["secrets", "secrets.postgres-admin",
                                  "secrets.postgres-admin.keys",
                                  "secrets.postgres-admin.keys.username",
                                  "secrets.postgres-admin.keys.username.value"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_never_shows_a_secret_value(repo_copy, path, fmt) -> None:
    _short_secret(repo_copy)
    out = cli.explain(repo_copy, sel(), path, fmt)
    assert SHORT not in out
    assert "********" in out


def test_set_of_a_secret_value_is_masked_in_provenance_and_errors(repo_copy) -> None:
    value = "zz9plural"
    for fmt in ("text", "json"):
        out = cli.explain(repo_copy, sel(sets=[
            f"secrets.postgres-admin.keys.username.value={value}"]), "secrets", fmt)
        assert value not in out
    with pytest.raises(ParityError) as exc:
        cli.config(repo_copy, sel(sets=[f"secrets.redis.keys.password.value={value}"]))
    assert value not in exc.value.render()  # both generate and value: refused, masked


def test_schema_errors_under_secrets_never_quote_the_value(repo_copy) -> None:
    f = repo_copy / "base" / "secrets.yaml"
    f.write_text(f.read_text().replace("      username: {value: postgres}",
                                       "      username: {value: hunter2x, generate: 9}", 1))
    with pytest.raises(InputError) as exc:
        load(repo_copy)
    assert "hunter2x" not in exc.value.render()


def test_config_and_diff_mask_short_values(repo_copy) -> None:
    _short_secret(repo_copy)
    assert SHORT not in cli.config(repo_copy, sel())
    assert SHORT not in cli.config(repo_copy, sel(), "json")
    local = repo_copy / "overlays" / "local" / "kind"
    local.mkdir(parents=True)
    (local / "x.yaml").write_text("secrets:\n  redis:\n    keys:\n      password: !replace "
                                  "{value: ab12}\n")
    for fmt in ("text", "json"):
        text, _ = cli.diff(repo_copy, "compose", "kind", 1, "model", fmt)
        assert SHORT not in text and "ab12" not in text


def test_log_masking_covers_short_values(tmp_path) -> None:
    _stored(tmp_path, "a", "k", "pw1")
    _stored(tmp_path, "a", "long", "a-long-secret-value\n")
    text = "login pw1 ok; pw10 is not it; token=a-long-secret-value"
    masked = secrets.mask(text, tmp_path / STATE)
    assert "pw1 " not in masked and "pw10" in masked
    assert "a-long-secret-value" not in masked


@pytest.mark.parametrize("path", ["/healthz\nHost: evil", "/a'b", "/a b", "/a\r"])
def test_readiness_path_that_a_probe_cannot_send_is_refused_by_config(repo_copy, path) -> None:
    with pytest.raises(InputError, match=r"readiness\.http\.path"):
        cli.config(repo_copy, sel(sets=[f"services.api.readiness.http.path={json.dumps(path)}"]))
