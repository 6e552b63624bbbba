"""One record per mode: everything that differs between compose and kind.

The command layer (``cli``, ``doctor``, ``offline``, the render dispatch, the live
checks) never asks ``if mode == "kind"``: it looks the mode up here
(:func:`mode_record`) or loops over :data:`MODES`. Adding a mode means adding one
:class:`Mode` record and the machinery it points at.

This module is imported on every command's path (``inv render`` included), so it
imports only what is cheap at its top; each mode's renderer, linter, validators,
lane are imported when first called (each ``# lazy:`` says why).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import secrets
from .errors import InputError, ParityError, did_you_mean
from .fsio import Entry, ensure_dir
from .model import Selection, environ_subset
from .yamlio import load_docs


@dataclass(frozen=True)
class Mode:
    name: str
    #: the file the render's cross-reference lint reads
    main_file: str
    #: what ``inv up`` needs to select this mode ('' for the default mode)
    up_flag: str
    #: (stack, RenderContext) -> {relative filename: text}; pure
    render: Callable
    #: (rendered files, stack) -> lint findings of the render
    lint_render: Callable
    #: (stack, root, rendered files, output dir) -> offline.Row list: the external
    #: validators of a render (nox -s validate)
    offline_checks: Callable
    #: (stack, root) -> extra fsio.Entry list written with a render (under the
    #: render's locks, in the same batch)
    render_extras: Callable
    #: (root, resolved, ui=None, timeout=None, recreate=False) -> the lifecycle lane;
    #: its ``preflight()`` returns the named checks of what it needs (inv doctor), its
    #: ``prerequisites()`` is up's first step
    lane: Callable
    #: (lane) -> None: what the live checks build once before they run in threads
    prepare_checks: Callable
    #: the lane reports a cluster (nodes) besides its services (inv status)
    has_cluster: bool
    #: the edge service's image is run by this mode's runtime (compose); else the
    #: edge is the mode's own controller (kind)
    runs_edge_image: bool
    #: who pulls a missing image (doctor's message)
    puller: str


def selection(mode: str, phase: int | str, profile: str | None = None,
              sets: list[str] | tuple[str, ...] | None = None,
              environ: dict[str, str] | None = None) -> Selection:
    """A :class:`~parity.model.Selection` from command-line values; the environment's
    PARITY_* variables are read here, once."""
    try:
        phase_n = int(phase)
    except (TypeError, ValueError):
        raise InputError(f"--phase must be 1, 2 or 3, not '{phase}'") from None
    return Selection(mode=mode, phase=phase_n, profile=profile, sets=tuple(sets or ()),
                     environ=environ_subset(os.environ if environ is None else environ))


# --------------------------------------------------------------------------- compose

def _render_compose(stack, ctx) -> dict[str, str]:
    # lazy: each renderer costs ~15 ms; a render needs only its own mode's
    from .render.compose import render_compose

    return render_compose(stack, ctx)


def _lint_compose(files: dict[str, str], stack) -> list:
    # lazy: 6 ms that only lint and the offline lane need; also lint -> render -> modes
    from . import lint

    return lint.lint_compose(load_docs(files["docker-compose.yaml"])[0], stack)


def _offline_compose(stack, root: Path, files: dict[str, str], out: Path) -> list:
    from .offline import compose_checks  # lazy: breaks the cycle offline -> modes -> offline

    return compose_checks(stack, root, files, out)


def _compose_extras(stack, root: Path) -> list[Entry]:
    # compose reads secret env files at `config` and `up`: the values and env files
    # are planned and checked with the render, and written with it in one batch, so
    # a refusal writes nothing
    store = secrets.plan(stack, root / ".parity")
    ensure_dir(secrets.store_dir(root / ".parity"), secrets.DIR_MODE)
    return store.entries()


def _compose_lane(root: Path, resolved, ui=None, timeout: float | None = None,
                  recreate: bool = False):
    # lazy: the lanes import docker and the lifecycle machinery; render/lint never need them
    from .lifecycle.compose import ComposeLane

    return ComposeLane(root, resolved, ui, **({} if timeout is None else {"timeout": timeout}))


def _no_preparation(lane) -> None:
    return None


# --------------------------------------------------------------------------- kind

def _render_kind(stack, ctx) -> dict[str, str]:
    # lazy: each renderer costs ~15 ms; a render needs only its own mode's
    from .render.kind import render_kind

    return render_kind(stack, ctx)


def _lint_kind(files: dict[str, str], stack) -> list:
    # lazy: 6 ms that only lint and the offline lane need; also lint -> render -> modes
    from . import lint

    return lint.lint_kind(load_docs(files["manifests.yaml"]), stack)


def _offline_kind(stack, root: Path, files: dict[str, str], out: Path) -> list:
    from .offline import kind_checks  # lazy: breaks the cycle offline -> modes -> offline

    return kind_checks(files)


def _no_extras(stack, root: Path) -> list[Entry]:
    return []


def _kind_lane(root: Path, resolved, ui=None, timeout: float | None = None,
               recreate: bool = False):
    # lazy: the kind lane costs ~25 ms (kube client, kind CLI); render/lint never need it
    from .lifecycle.kind import KindLane

    return KindLane(root, resolved, ui, recreate=recreate,
                    **({} if timeout is None else {"timeout": timeout}))


def _prepare_kind_checks(lane) -> None:
    """Build the lane's API client once, before the checks run in threads."""
    try:
        lane.kube  # noqa: B018
    except ParityError:
        pass  # no cluster: each check that needs it fails with the reason


COMPOSE = Mode(name="compose", main_file="docker-compose.yaml", up_flag="",
               render=_render_compose, lint_render=_lint_compose,
               offline_checks=_offline_compose, render_extras=_compose_extras,
               lane=_compose_lane,
               prepare_checks=_no_preparation, has_cluster=False, runs_edge_image=True,
               puller="up")

KIND = Mode(name="kind", main_file="manifests.yaml", up_flag=" --mode kind",
            render=_render_kind, lint_render=_lint_kind, offline_checks=_offline_kind,
            render_extras=_no_extras, lane=_kind_lane,
            prepare_checks=_prepare_kind_checks, has_cluster=True, runs_edge_image=False,
            puller="the node")

MODES: dict[str, Mode] = {"compose": COMPOSE, "kind": KIND}


def mode_record(name: str) -> Mode:
    """The record of a mode; an unknown name is refused as the model loader refuses it."""
    try:
        return MODES[name]
    except KeyError:
        raise InputError(f"unknown mode '{name}'{did_you_mean(name, list(MODES))}",
                         hint=f"use --mode {' or --mode '.join(MODES)}") from None
