"""Output YAML: renderers produce plain dicts/lists; :func:`dump_all` emits them with
PyYAML's libyaml dumper (10-15x faster than ruamel round-trip, see
docs/performance.md), block style, indented sequences, no folding, so the result is
byte-stable and yamllint-clean. Files are written atomically. :func:`load_docs`
reads such output (parity's own) back as plain data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import fastemit

_Dumper = None


def _dumper():
    global _Dumper
    if _Dumper is None:
        import yaml  # lazy: PyYAML costs ~10 ms on import; only writing output needs it

        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        scalar, mapping, sequence = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode
        std = "tag:yaml.org,2002:"

        class Dumper(base):  # type: ignore[misc, valid-type]
            def represent_data(self, data):
                """SafeRepresenter.represent_data for the types renderers produce,
                without its per-node lookups: the same nodes (a dict or list met twice
                is still an alias), so libyaml writes the same bytes; anything else
                goes the usual way."""
                cls = data.__class__
                if cls is str:
                    return scalar(std + "str", data, style="|" if "\n" in data else None)
                if (cls is dict or cls is list) and self.default_flow_style is False \
                        and not self.sort_keys:
                    key = id(data)
                    node = self.represented_objects.get(key)
                    if node is not None:
                        return node
                    self.object_keeper.append(data)
                    value: list = []
                    rep = self.represent_data
                    if cls is dict:
                        node = mapping(std + "map", value, flow_style=self.default_flow_style)
                        self.represented_objects[key] = node
                        for k, v in data.items():
                            value.append((rep(k), rep(v)))
                    else:
                        node = sequence(std + "seq", value, flow_style=self.default_flow_style)
                        self.represented_objects[key] = node
                        for v in data:
                            value.append(rep(v))
                    return node
                if cls is int:
                    return scalar(std + "int", str(data))
                if cls is bool:
                    return scalar(std + "bool", "true" if data else "false")
                if data is None:
                    return scalar(std + "null", "null")
                return super().represent_data(data)

        def str_repr(dumper, data: str):
            style = "|" if "\n" in data else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        Dumper.add_representer(str, str_repr)
        _Dumper = Dumper
    return _Dumper


_BLOCK_HEADER = re.compile(r"(^|: |- )[|>][0-9+-]*$")


def _indent_sequences(text: str) -> str:
    """libyaml writes block sequences flush with their parent key; yamllint's default
    (``indent-sequences: true``) wants them indented. Re-indent line by line: exact
    for libyaml's block output, where plain scalars never span lines; the bodies of
    literal blocks move with their header and are not looked into."""
    out: list[str] = []
    stack: list[tuple[int, int]] = []  # (column of a '- ' run, columns added to it)
    block_indent = -1
    block_extra = 0
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if block_indent >= 0:
            if not stripped or indent > block_indent:
                out.append(" " * block_extra + line if stripped else line)
                continue
            block_indent = -1
        if not stripped:
            out.append(line)
            continue
        while stack and indent < stack[-1][0]:
            stack.pop()
        if stripped.startswith("- ") or stripped == "-":
            if not stack or stack[-1][0] != indent:
                stack.append((indent, (stack[-1][1] if stack else 0) + 2))
            extra = stack[-1][1]
        else:
            if stack and indent == stack[-1][0]:
                stack.pop()
            extra = stack[-1][1] if stack else 0
        out.append(" " * (indent + extra) + stripped)
        if _BLOCK_HEADER.search(stripped):
            block_indent, block_extra = indent, extra
    return "\n".join(out)


def dump(data: Any) -> str:
    return dump_all([data])


#: How libyaml writes output: block style, keys in order, no folding. The plain-data
#: writer asks libyaml for scalars with these same settings, so they are one constant.
_STYLE = {"default_flow_style": False, "sort_keys": False, "width": 4096,
          "allow_unicode": True}
_writer = None


def _libyaml_one(data: Any) -> str:
    """One small mapping as libyaml writes it: the writer asks for the scalars it does
    not decide itself."""
    import yaml  # lazy: PyYAML costs ~10 ms on import; only writing output needs it

    return yaml.dump(data, Dumper=_dumper(), **_STYLE)


def dump_all(docs: list[Any]) -> str:
    """Multi-document YAML, each document starting with ``---``; stable for equal input.

    The plain-data writer (:mod:`parity.yamlio.fastemit`) writes the same bytes as the
    libyaml path below, faster; where it is not sure, it declines and libyaml writes."""
    global _writer
    if _writer is None:
        _writer = fastemit.Writer(_libyaml_one)
    text = fastemit.dump_all_fast(_writer, docs)
    if text is not None:
        return text
    import yaml  # lazy: PyYAML costs ~10 ms on import; only writing output needs it

    raw = yaml.dump_all(docs, Dumper=_dumper(), explicit_start=True, **_STYLE)
    return _indent_sequences(raw)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` atomically (temp file + rename). Returns False, and
    writes nothing, when the file already holds exactly that text. An OSError
    becomes :class:`parity.fsio.WriteFailed` (exit 3)."""
    # lazy: parity.fsio pulls in tempfile and dataclasses (~15 ms); only writers need it
    from .. import fsio

    return fsio.write_atomic(path, text, mode)


def load_docs(text: str) -> list[dict]:
    """The non-empty documents of rendered YAML (parity's own output), as plain data,
    with libyaml: no provenance, no overlay tags."""
    import yaml  # lazy: PyYAML costs ~10 ms on import; only reading output needs it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(text, Loader=loader) if d]
