"""Loading one hand-written YAML file: libyaml (fast.py, fastconvert.py) reads it
when it reads it as the reference reader (reference.py) would; any other file, and
any file with an error, is read by the reference reader."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..nodes import Map
from .fast import Unsure, fast_docs
from .fastconvert import FastConverter
from .inputs import MAX_INPUT_BYTES, TagParser, decode, read_input
from .reference import parse_reference, root_map


def load_file(path: Path, rel: str, layer: str, *, tag_parser: TagParser | None = None,
              text: str | None = None) -> Map:
    """Load one single-document YAML file into a :class:`Map` (empty file -> empty map).

    ``tag_parser`` turns a local tag such as ``!replace`` into an overlay operation;
    when it is ``None`` (base files) any tag is an error."""
    if text is None:
        text = decode(read_input(path, rel), rel)
    elif len(text.encode()) > MAX_INPUT_BYTES:
        raise InputError(f"input is more than {MAX_INPUT_BYTES} bytes", where=rel)
    return parse_text(text, rel, layer, tag_parser=tag_parser)


def parse_text(text: str, rel: str, layer: str, *, tag_parser: TagParser | None = None) -> Map:
    """One single-document YAML text as a :class:`Map` (see load_file).

    libyaml reads it when it reads it as the reference reader (ruamel, reference.py) would;
    any other file, and any file with an error, is read by the reference reader, so
    the result and every message are the reference's."""
    fast = fast_docs(text)
    if fast is not None:
        try:
            return root_map(fast[0], rel, layer, FastConverter(rel, layer, tag_parser, fast[1]))
        except (InputError, Unsure):
            pass  # the reference reader finds the error again and words it
    return parse_reference(text, rel, layer, tag_parser)
