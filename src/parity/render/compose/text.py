"""The text of ``docker-compose.yaml`` after the data is built: ``$`` escaped for
compose's interpolation (:func:`escape`) and long lines folded (:func:`fit_lines`)."""

from __future__ import annotations

import re
from typing import Any

#: yamllint's default line-length limit; see :func:`fit_lines`.
MAX_LINE = 80
#: A mapping key at the top or one level down (``services:``, ``  api:``), not a list
#: item and not a comment: where an entry that :func:`fit_lines` parses alone starts.
_ENTRY_KEY = re.compile(r"^ {0,2}[^ #-][^:]*:(?: |$)")


def escape(node: Any) -> Any:
    """Every string with ``$`` doubled: compose interpolates ``$VAR``/``${VAR}`` in
    every value of the file, and the values here are already final."""
    if isinstance(node, str):
        return node.replace("$", "$$")
    if isinstance(node, dict):
        return {k: escape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [escape(v) for v in node]
    return node


# --------------------------------------------------------------------------- line length

def fit_lines(text: str) -> str:
    """Keep every line within yamllint's default limit of 80 characters.

    yamlio never folds (a folded plain scalar would break its sequence
    re-indentation), so a long value, typically a line of a config file's content,
    gives a long line. Each value that covers such a line is re-emitted as a
    double-quoted scalar broken with escaped line breaks: the same string, in the
    one YAML form that may break anywhere. Positions come from the YAML parser,
    which reads only the entry (a key at the top or one level down, with its whole
    value) around each long line; the whole file where that cannot be done.
    """
    lines = text.split("\n")
    long = {i for i, line in enumerate(lines) if len(line) > MAX_LINE}
    if not long:
        return text
    # lazy: PyYAML costs ~10 ms on import; only a file with a long line needs the parser
    import yaml

    try:
        spans = [span for start, end, dedent in _entries(lines, long)
                 for span in _long_scalars(lines, long, start, end, dedent)]
    except yaml.YAMLError:   # an alias to an anchor outside the entry, say
        spans = list(_long_scalars(lines, long, 0, len(lines), 0))
    for first_line, last, column, indent, value in sorted(spans, reverse=True):
        head = lines[first_line][:column]
        folded = _double_quoted(value, MAX_LINE - column, MAX_LINE - indent)
        lines[first_line:last + 1] = [head + folded[0]] + [" " * indent + f
                                                           for f in folded[1:]]
    return "\n".join(lines)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _entries(lines: list[str], long: set[int]):
    """(first line, end line, indentation) of the entry around each long line: the
    nearest line above it (or it) that is a mapping key at column 0 or 2, and every
    line below until one as little indented; each entry once."""
    seen = set()
    for i in sorted(long):
        start = i
        while start > 0 and not _ENTRY_KEY.match(lines[start]):
            start -= 1
        if start in seen:
            continue
        seen.add(start)
        dedent = _indent(lines[start])
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > dedent):
            end += 1
        yield start, end, dedent


def _long_scalars(lines: list[str], long: set[int], start: int, end: int, dedent: int):
    """The spans (first line, last line, column, indentation of continuation lines,
    value) of the scalar values in lines[start:end] that cover a long line."""
    import yaml  # lazy: as in fit_lines (already imported by then)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    chunk = "\n".join(line[dedent:] for line in lines[start:end])
    for node, indent in _value_scalars(yaml.compose(chunk, Loader=loader)):
        first, last_mark = node.start_mark, node.end_mark
        # a block scalar ends at column 0 of the line after it
        last = last_mark.line if last_mark.column else last_mark.line - 1
        if long.intersection(range(first.line + start, last + start + 1)):
            yield (first.line + start, last + start, first.column + dedent,
                   indent + dedent, node.value)


def _value_scalars(node, indent: int = 0):
    """(scalar node, indentation its continuation lines need) for every scalar
    value (not key): more than the enclosing mapping's keys, or at the item's column
    in a sequence."""
    import yaml  # lazy: as in fit_lines (already imported by then)

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _value_scalars(value, key.start_mark.column + 2)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _value_scalars(item, item.start_mark.column)
    elif isinstance(node, yaml.ScalarNode):
        yield node, indent


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _escaped(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch == " " or ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def _double_quoted(value: str, first_room: int, room: int) -> list[str]:
    """``value`` as a YAML double-quoted scalar in lines of at most ``first_room``
    (the first) and ``room`` characters. A line ends with an escaped line break
    (``\\``, which adds nothing to the value) after each ``\\n`` of the value, and
    after the last space that fits when the room runs out (or anywhere, in a long
    word). A space that would start a line is escaped: YAML drops it otherwise."""
    out: list[str] = []
    line: list[str] = ['"']   # escaped pieces, one per character of the value
    budget = first_room

    def flush(keep: int) -> None:
        nonlocal line, budget
        out.append("".join(line[:keep]) + "\\")
        line, budget = line[keep:], room
        if line and line[0] == " ":
            line[0] = "\\ "

    for ch in value:
        piece = _escaped(ch)
        while len("".join(line)) + len(piece) + 1 > budget and line not in ([], ['"']):
            flush(_break(line, budget))
        line.append("\\ " if not line and piece == " " else piece)
        if piece == "\\n":  # one line of the value per line of YAML
            flush(len(line))
    if not line:  # the value ended with a newline: close the last line instead
        return out[:-1] + [out[-1][:-1] + '"']
    return out + ["".join(line) + '"']


def _break(line: list[str], budget: int) -> int:
    """How many pieces of ``line`` go on this line: up to the last space that fits
    (with room for the closing backslash), else as many as fit, at least one."""
    fit, width = 0, 0
    for i, piece in enumerate(line):
        if width + len(piece) + 1 > budget:
            break
        width, fit = width + len(piece), i + 1
    spaces = [i + 1 for i in range(fit) if line[i] == " "]
    return spaces[-1] if spaces else max(fit, 1)
