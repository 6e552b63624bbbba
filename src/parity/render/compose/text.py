"""The text of ``docker-compose.yaml`` after the data is built: ``$`` escaped for
compose's interpolation (:func:`escape`) and long lines folded (:func:`fit_lines`)."""

from __future__ import annotations

from typing import Any

#: yamllint's default line-length limit; see :func:`fit_lines`.
MAX_LINE = 80


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
    one YAML form that may break anywhere. Positions come from the YAML parser.
    """
    lines = text.split("\n")
    long = {i for i, line in enumerate(lines) if len(line) > MAX_LINE}
    if not long:
        return text
    # lazy: PyYAML costs ~10 ms on import; only a file with a long line needs the parser
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spans = []
    for node, indent in _value_scalars(yaml.compose(text, Loader=loader)):
        first, end = node.start_mark, node.end_mark
        last = end.line if end.column else end.line - 1  # a block scalar ends at col 0
        if long.intersection(range(first.line, last + 1)):
            spans.append((first.line, last, first.column, indent, node.value))
    for first_line, last, column, indent, value in sorted(spans, reverse=True):
        head = lines[first_line][:column]
        folded = _double_quoted(value, MAX_LINE - column, MAX_LINE - indent)
        lines[first_line:last + 1] = [head + folded[0]] + [" " * indent + f
                                                           for f in folded[1:]]
    return "\n".join(lines)


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
