"""parity.modes: one record per mode; the command layer looks modes up there and
never branches on a mode's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parity import model
from parity.model import layers
from parity.errors import InputError
from parity.modes import MODES, mode_record, selection
from parity.render import RenderContext, render

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "parity"


def test_every_mode_the_model_knows_has_a_record() -> None:
    assert tuple(MODES) == layers.MODES
    assert all(mode_record(name).name == name for name in MODES)


@pytest.mark.parametrize("name", ["kinds", "Kind", "swarm"])
def test_an_unknown_mode_is_refused_as_the_model_refuses_it(name) -> None:
    with pytest.raises(InputError) as record_error:
        mode_record(name)
    with pytest.raises(InputError) as load_error:
        model.load(ROOT, selection(name, 1, environ={}))
    assert record_error.value.render() == load_error.value.render()


@pytest.mark.parametrize("name", list(MODES))
def test_a_records_renderer_and_linter_agree_on_the_main_file(name) -> None:
    mode = mode_record(name)
    stack = model.load(ROOT, selection(name, 3, environ={})).stack
    files = render(stack, RenderContext())
    assert files == mode.render(stack, RenderContext())
    assert mode.main_file in files
    assert mode.lint_render(files, stack) == []


COMMAND_LAYER = ["cli.py", "doctor.py", "offline.py", "checks.py", "checkout.py",
                 "render/__init__.py"]


@pytest.mark.parametrize("rel", COMMAND_LAYER)
def test_the_command_layer_does_not_branch_on_a_mode_name(rel) -> None:
    text = (SRC / rel).read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert not re.findall(r"mode\s*[!=]=\s*[\"']|[\"'](?:kind|compose)[\"']\s*[!=]=\s*\w*mode",
                          code)
