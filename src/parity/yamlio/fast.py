"""The fast reader's front half: libyaml (PyYAML's C parser) composes the node graph
about 40x faster than ruamel. It is used whenever it provably reads a file as the
reference reader (reference.py) does; anything else (an error, a %-directive, a tag
libyaml would read otherwise) goes to the reference reader, so results and messages
stay the same. Overlay tags are %-escaped for libyaml and every tag it scans is
checked against an emulation of ruamel's scanner. fastconvert.py turns the nodes
into parity trees."""

from __future__ import annotations

import re

from .inputs import STD

PLAIN = "?plain"    # an untagged plain scalar: resolved here, by YAML 1.2's rules
QUOTED = "?quoted"  # an untagged quoted or block scalar: a string
MAP = STD + "map"
SEQ = STD + "seq"

_Loader = None


def _loader():
    """PyYAML's C parser and composer; the resolver only marks what was untagged."""
    global _Loader
    if _Loader is None:
        import yaml  # lazy: PyYAML costs ~10 ms on import; only reading input needs it

        try:
            # lazy: PyYAML is imported only by the commands that read or write YAML here
            from yaml._yaml import CParser
        except ImportError:  # PyYAML without libyaml: the reference reader reads
            _Loader = False
            return _Loader
        scalar = yaml.ScalarNode

        class Loader(CParser):  # type: ignore[misc, valid-type]
            def resolve(self, kind, value, implicit):
                if kind is scalar:
                    return PLAIN if implicit[0] else QUOTED
                return MAP if kind is yaml.MappingNode else SEQ

            def descend_resolver(self, parent, index):
                pass

            def ascend_resolver(self):
                pass

        _Loader = Loader
    return _Loader


#: What ruamel reads as a tag's URI characters (YAML 1.2: '#' included) ...
_RUAMEL_URI = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "-;/?:@&=+$,_.!~*'()[]%#")
#: ... and what libyaml takes in a tag unescaped; the rest is %-escaped for it.
_LIBYAML_URI = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "-_;/?:@&=+$.!~*'()")
_BREAKS = "\0\r\n\x85\u2028\u2029"
_TAG_ENDS = "\0 \r\n\x85\u2028\u2029"


class Unsure(Exception):
    """The fast reader cannot tell that it reads this file as the reference does."""


def _ruamel_tag(text: str, i: int) -> tuple[str, str, int]:
    """(handle, suffix, end) of the tag the reference reader scans at ``text[i]``
    ('!'), with its parenthesised parameters (spaces dropped, see _tag_scanner);
    Unsure for the forms this does not model (named handles, verbatim and
    non-specific tags, %-escapes, what the reference refuses)."""
    n = len(text)
    j = i + 1
    handle = "!"
    if j < n and text[j] == "!":
        handle, j = "!!", j + 1
    if j >= n or text[j] in "<\0 \t\r\n\x85\u2028\u2029":
        raise Unsure
    k = j
    while k < n and text[k] not in _TAG_ENDS:
        if text[k] == "!":  # a named handle (!e!x)
            raise Unsure
        k += 1
    k = j
    while k < n and text[k] in _RUAMEL_URI:
        k += 1
    suffix = text[j:k]
    if not suffix or "%" in suffix:
        raise Unsure
    depth = suffix.count("(") - suffix.count(")")
    if depth > 0:
        m, ahead = k, depth
        while m < n and text[m] not in _BREAKS:
            if text[m] == "(":
                ahead += 1
            elif text[m] == ")":
                ahead -= 1
                if ahead == 0:
                    rest = text[k:m + 1]
                    if "%" in rest:
                        raise Unsure
                    suffix += re.sub(r"\s+", "", rest)
                    k = m + 1
                    break
            m += 1
    if k < n and text[k] not in _TAG_ENDS:
        raise Unsure  # the reference refuses it ("expected ' '")
    return handle, suffix, k


def _escaped(suffix: str) -> str:
    if all(c in _LIBYAML_URI for c in suffix):
        return suffix
    return "".join(c if c in _LIBYAML_URI else "".join(f"%{b:02X}" for b in c.encode())
                   for c in suffix)


def _tags_for_libyaml(text: str) -> str:
    """``text`` with its tags written so libyaml reads them as the reference reader
    does (``!merge(by=port, expects=2+)`` -> ``!merge(by=port%2Cexpects=2+)``);
    Unsure when that cannot be shown: every tag libyaml then scans must be one the
    reference scans, with the same value."""
    import yaml  # lazy: PyYAML costs ~10 ms on import; only reading input needs it

    # every '!' that would be a tag needing a rewrite if it were a tag
    wanted: dict[int, tuple[str, str, int]] = {}
    pos = text.find("!")
    while pos >= 0:
        nxt = pos + 1
        try:
            handle, suffix, end = _ruamel_tag(text, pos)
        except Unsure:
            pass
        else:
            if end != pos + len(handle) + len(suffix) or _escaped(suffix) != suffix:
                wanted[pos] = (handle, suffix, end)
            nxt = end
        pos = text.find("!", nxt)
    for _ in range(3):
        # write the rewrites, remembering where each original offset went
        parts, shifts, last, delta = [], [], 0, 0
        for p in sorted(wanted):
            handle, suffix, end = wanted[p]
            new = handle + _escaped(suffix)
            parts.append(text[last:p])
            parts.append(new)
            shifts.append((p + delta, p, end, len(new)))
            delta += len(new) - (end - p)
            last = end
        parts.append(text[last:])
        out = "".join(parts)
        starts = {s[0]: s for s in shifts}
        seen: set[int] = set()
        loader = _loader()(out)
        try:
            while loader.check_token():
                tok = loader.get_token()
                if type(tok) is not yaml.TagToken:
                    continue
                at = tok.start_mark.index
                if at in starts:
                    new_at, p, end, _ = starts[at]
                    seen.add(p)
                else:
                    if out[at:at + 1] != "!":
                        raise Unsure
                    p = _original(at, shifts)
                    end = None
                try:
                    handle, suffix, r_end = _ruamel_tag(text, p)
                except Unsure:
                    raise Unsure from None
                if tok.value != (handle, suffix) or (end is not None and r_end != end):
                    raise Unsure
                if end is None and p in wanted:
                    raise Unsure
                if end is None and r_end - p != tok.end_mark.index - at:
                    raise Unsure
        except yaml.YAMLError:
            raise Unsure from None
        finally:
            loader.dispose()
        missed = set(wanted) - seen
        if not missed:
            return out
        for p in missed:  # in a comment or a string: not a tag, leave it as written
            del wanted[p]
    raise Unsure


def _original(at: int, shifts: list[tuple[int, int, int, int]]) -> int:
    """The offset in the original text of offset ``at`` of the rewritten one (not
    inside a rewritten tag)."""
    delta = 0
    for new_at, p, end, new_len in shifts:
        if new_at >= at:
            break
        delta = (end - p) - new_len + delta
    return at + delta


#: What the fast reader leaves to the reference reader, which reads these otherwise
#: than libyaml: a %-directive, tabs, a byte order mark, the Unicode line breaks, a
#: block scalar header with a comment glued to it (``|#``) or followed by leading
#: blank lines that hold spaces.
_UNSURE_TEXT = re.compile("[\t\x85\u2028\u2029\ufeff]|^%|[|>][-+0-9]*#"
                          "|[|>][-+0-9]* *(?:#[^\r\n]*)?(?:\r\n?|\n)(?: *(?:\r\n?|\n))*? +(?:\r\n?|\n)",
                          re.M)


def fast_docs(text: str) -> tuple[list, str] | None:
    """(the documents of ``text`` composed by libyaml, the text libyaml read), or None
    when the reference reader must read it."""
    Loader = _loader()
    if not Loader or _UNSURE_TEXT.search(text):
        return None
    try:
        if "!" in text:
            text = _tags_for_libyaml(text)
        loader = Loader(text)
        try:
            docs = []
            while loader.check_node():
                docs.append(loader.get_node())
            return docs, text
        finally:
            loader.dispose()
    except Unsure:
        return None
    except Exception as exc:  # a YAMLError: the reference reader words the message
        import yaml  # lazy: as in _loader (already imported by then)

        if isinstance(exc, yaml.YAMLError):
            return None
        raise
