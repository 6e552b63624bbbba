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

    return wrapper


def _out(text):
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@task(iterable=["set"], auto_shortflags=False, help={"mode": MODE_HELP, "phase": PHASE_HELP, "profile": PROFILE_HELP,
                              "set": SET_HELP, "format": "yaml (default) or json"})
@engine
def config(c, mode="compose", phase=1, profile=None, set=None, format="yaml"):
    """Print the merged model of a mode and phase (secret values masked)."""
    from parity import cli

    _out(cli.config(ROOT, cli.selection(mode, phase, profile, set), format))


@task(iterable=["set"], positional=["path"], auto_shortflags=False,
      help={"mode": MODE_HELP, "phase": PHASE_HELP, "profile": PROFILE_HELP, "set": SET_HELP,
            "path": "model path, e.g. services.api.replicas or services.api.ports[http].port",
            "format": "text (default) or json"})
@engine
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
def diff(c, from_="compose", to="kind", phase=1, level="model", format="text", against=None,
         profile=None, set=None):
    """Classify every difference between two modes/phases; exit 1 on contract drift."""
    from parity import cli

    text, code = cli.diff(ROOT, from_, to, phase, level, format, against, profile, set)
    _out(text)
    if code:
        raise Exit(code=code)


ns = Collection(config, explain, diff, variables, schema)
