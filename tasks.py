"""parity's Invoke entry: flags in, engine call, errors out as exit codes.

Keep this file thin and its imports lazy: `inv --list` must not load the engine.
Exit codes: 0 ok, 1 a check or parity rule failed, 2 bad input, 3 a prerequisite
is missing.
"""

import functools
import os
import sys
from pathlib import Path

from invoke import Collection, Exit, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))

MODE_HELP = "compose (default) or kind"
PHASE_HELP = "1, 2 or 3 (default 1): services of phases up to N"
PROFILE_HELP = "image profile: a file in overlays/images/ (default: default)"
SET_HELP = "PATH=VALUE applied last, e.g. services.api.replicas=2 (repeatable)"


def engine(fn):
    """Run a task body, turning parity errors into `Exit(message, code)`."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        from parity.errors import ParityError

        try:
            return fn(c, *args, **kwargs)
        except ParityError as exc:
            if os.environ.get("PARITY_DEBUG"):
                raise
            raise Exit(f"error: {exc.render()}", code=exc.exit_code) from None
        except OSError as exc:
            # a last-resort net: a write that missed parity.fsio (full disk,
            # read-only or foreign-owned .parity/) is still an exit 3, not a traceback
            from parity.fsio import is_write_problem, write_error

            if os.environ.get("PARITY_DEBUG") or not is_write_problem(exc):
                raise
            err = write_error(exc, exc.filename or "(unknown path)")
            raise Exit(f"error: {err.render()}", code=err.exit_code) from None

    return wrapper


def gc_paused(fn):
    """A task that builds a model and renders it in one go runs without the cyclic
    garbage collector (re-enabled after): its objects are freed by reference
    counting, and the collector's passes over the growing heap were about 20 % of
    the CPU of a 1000-service render, for no memory back (docs/performance.md).
    After the task what is still alive (the parse caches, the model) is frozen, so
    neither a later collection nor the one at interpreter exit walks it again.
    Lifecycle tasks, which poll for minutes, keep the collector."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import gc

        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.freeze()
                gc.enable()

    return wrapper


def _out(text):
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _finish(text, code):
    """Print a result and end with its exit code (1: a check or rule failed)."""
    _out(text)
    if code:
        raise Exit(code=code)


@task(iterable=["set"], auto_shortflags=False, help={"mode": MODE_HELP, "phase": PHASE_HELP, "profile": PROFILE_HELP,
                              "set": SET_HELP, "format": "yaml (default) or json"})
@engine
@gc_paused
def config(c, mode="compose", phase=1, profile=None, set=None, format="yaml"):
    """Print the merged model of a mode and phase (secret values masked)."""
    from parity import cli

    _out(cli.config(ROOT, cli.selection(mode, phase, profile, set), format))


@task(iterable=["set"], positional=["path"], auto_shortflags=False,
      help={"mode": MODE_HELP, "phase": PHASE_HELP, "profile": PROFILE_HELP, "set": SET_HELP,
            "path": "model path, e.g. services.api.replicas or services.api.ports[http].port",
            "format": "text (default) or json"})
@engine
@gc_paused
def explain(c, path, mode="compose", phase=1, profile=None, set=None, format="text"):
    """Show a model value and every layer (file:line) that set it."""
    from parity import cli

    if path in ("--help", "-h"):  # invoke hands --help to a missing positional
        import subprocess

        subprocess.run([sys.executable, "-m", "invoke", "--help", "explain"], cwd=ROOT)
        return

    _out(cli.explain(ROOT, cli.selection(mode, phase, profile, set), path, format))


@task
@engine
def variables(c):
    """List the documented PARITY_* variables."""
    from parity import cli

    _out(cli.variables())


@task(help={"check": "fail if docs/schema.json is out of date instead of writing it"})
@engine
def schema(c, check=False):
    """Write the stack model's JSON Schema to docs/schema.json (for editors)."""
    from parity import cli
    from parity.errors import CheckFailed
    from parity.yamlio import write_atomic

    text = cli.schema_json()
    target = ROOT / "docs" / "schema.json"
    if check:
        if not target.exists() or target.read_text() != text:
            raise CheckFailed("docs/schema.json is out of date", hint="run inv schema")
        return
    write_atomic(target, text)
    _out(f"wrote {target.relative_to(ROOT)}")


@task(iterable=["set"], auto_shortflags=False,
      help={"from": "mode or mode:phase, e.g. compose or kind:1 (default compose)",
            "to": "mode or mode:phase (default kind)", "phase": "phase for sides without one",
            "level": "model (default) or rendered", "format": "text (default) or json",
            "against": "compare a fresh render of --to with this saved render directory",
            "profile": PROFILE_HELP, "set": SET_HELP})
@engine
@gc_paused
def diff(c, from_="compose", to="kind", phase=1, level="model", format="text", against=None,
         profile=None, set=None):
    """Classify every difference between two modes/phases; exit 1 on contract drift."""
    from parity import cli

    _finish(*cli.diff(ROOT, from_, to, phase, level, format, against, profile, set))


def _sel(mode, phase, profile=None, set=None):
    from parity import cli

    return cli.selection(mode, phase, profile, set)


def _lane(mode, phase, profile=None, set=None, command=""):
    """A lifecycle command's selection: every value not given is the running one
    (recorded by up, parity.running); a differing explicit value is said on stderr."""
    from parity import cli, running

    mode, phase, profile, set, note = running.resolve(ROOT, mode, phase, profile, set,
                                                      command=command)
    if note:
        sys.stderr.write(note + "\n")
    return cli.selection(mode, phase, profile, set)


LANE_HELP = {"mode": MODE_HELP, "phase": PHASE_HELP, "profile": PROFILE_HELP, "set": SET_HELP}
RUNNING = "; default: the running one (recorded by inv up in .parity/running.json), else "
LIFECYCLE_HELP = {"mode": "compose or kind" + RUNNING + "compose",
                  "phase": "1, 2 or 3: services of phases up to N" + RUNNING + "1",
                  "profile": "image profile: a file in overlays/images/" + RUNNING
                  + "default (or $PARITY_IMAGE_PROFILE)",
                  "set": SET_HELP + "; default: the --set values of the running up"}


@task(iterable=["set"], auto_shortflags=False,
      help={**LANE_HELP, "out": "output directory (default .parity/build/<mode>/phase<N>/)",
            "all": "render all six mode/phase combinations"})
@engine
@gc_paused
def render(c, mode="compose", phase=1, profile=None, set=None, out=None, all=False):
    """Render the final YAML for a mode and phase (atomic, byte-stable)."""
    from parity import cli
    from parity.modes import MODES

    if all:
        for m in MODES:
            for p in (1, 2, 3):
                _out(cli.render(ROOT, _sel(m, p, profile, set)))
        return
    _out(cli.render(ROOT, _sel(mode, phase, profile, set), out))


@task(iterable=["set"], auto_shortflags=False, help=LANE_HELP)
@engine
@gc_paused
def lint(c, mode="compose", phase=1, profile=None, set=None):
    """Model rules (with file:line and the fix) and the cross-reference lint of a render."""
    from parity import cli

    _finish(*cli.lint(ROOT, _sel(mode, phase, profile, set)))


RECREATE_HELP = "kind: recreate the cluster when its kind-config changed (data is lost)"


@task(iterable=["set"], auto_shortflags=False,
      help={**LIFECYCLE_HELP, "timeout": "seconds to wait for readiness (default 600)",
            "recreate": RECREATE_HELP})
@engine
def up(c, mode=None, phase=None, profile=None, set=None, timeout=600, recreate=False):
    """Create or update the environment and wait until every service is ready."""
    from parity import cli

    _out(cli.up(ROOT, _lane(mode, phase, profile, set, "up"), float(timeout), recreate))


@task(iterable=["set"], auto_shortflags=False,
      help={**LIFECYCLE_HELP, "json": "print JSON instead of a table"})
@engine
def doctor(c, mode=None, phase=None, profile=None, set=None, json=False):
    """Check every prerequisite of a lane at once, change nothing (exit 3 if one is missing)."""
    from parity import cli

    _finish(*cli.doctor(ROOT, _lane(mode, phase, profile, set), json))


@task(iterable=["set"], auto_shortflags=False,
      help={**LIFECYCLE_HELP, "json": "print JSON instead of a table"})
@engine
def status(c, mode=None, phase=None, profile=None, set=None, json=False):
    """One row per service: state, health, reason, endpoint (exit 1 if not all ready)."""
    from parity import cli

    _finish(*cli.status(ROOT, _lane(mode, phase, profile, set), json))


@task(iterable=["set"], auto_shortflags=False,
      help={**LIFECYCLE_HELP, "json": "print JSON instead of a table",
            "browser": "also log in through the edge in headless Chromium (checks/browser.py)"})
@engine
def validate(c, mode=None, phase=None, profile=None, set=None, json=False, browser=False):
    """Run the live checks (readiness, smoke through the edge, identity, contract)."""
    from parity import cli

    _finish(*cli.validate(ROOT, _lane(mode, phase, profile, set), json, browser))


DRY_RUN_HELP = "name what would be removed, remove nothing"


VOLUMES_HELP = ("also delete the data volumes (compose: parity's named volumes; kind: "
                ".parity/data/kind/); without it down keeps them for the next up")


@task(iterable=["set"], auto_shortflags=False,
      help={**LIFECYCLE_HELP, "dry-run": DRY_RUN_HELP, "volumes": VOLUMES_HELP})
@engine
def down(c, mode=None, phase=None, profile=None, set=None, dry_run=False, volumes=False):
    """Remove what parity created for the environment, and nothing else; keep its data
    (--volumes deletes it too)."""
    from parity import cli

    _out(cli.down(ROOT, _lane(mode, phase, profile, set, "down"), dry_run, volumes))


@task(iterable=["set"], auto_shortflags=False,
      help={**LIFECYCLE_HELP, "timeout": "seconds to wait for readiness (default 600)",
            "dry-run": DRY_RUN_HELP})
@engine
def reset(c, mode=None, phase=None, profile=None, set=None, timeout=600, dry_run=False):
    """Destroy and recreate the environment from zero (its data deleted, reseeded)."""
    from parity import cli

    sel = _lane(mode, phase, profile, set, "reset")
    if dry_run:
        _out(cli.down(ROOT, sel, dry_run=True, volumes=True) + "\nthen: up from zero")
        return
    with cli.environment_lock(ROOT, sel):  # no other command between the down and the up
        _out(cli.down(ROOT, sel, volumes=True))
        _out(cli.up(ROOT, sel, float(timeout)))


@task(iterable=["set"], auto_shortflags=False,
      help={**LANE_HELP, "force": "rebuild even when the inputs are unchanged"})
@engine
def images(c, mode="compose", phase=3, profile=None, set=None, force=False):
    """Build the images of a profile; unchanged inputs are not rebuilt."""
    from parity import cli

    _out(cli.images(ROOT, _sel(mode, phase, profile, set), force))


@task(name="verify", auto_shortflags=False,
      help={"live": "also run the live checks against the running environment"})
@engine
def verify(c, live=False):
    """Offline parity lane: render, schema-check, lint and diff all six combinations."""
    from parity import cli

    _finish(*cli.validate_offline(ROOT, live))


ns = Collection(config, explain, render, lint, diff, doctor, up, status, validate, down, reset,
                images, verify, variables, schema)
