"""Reading hand-written YAML with line numbers, and writing output YAML fast.

Input: libyaml (PyYAML's C parser) composes the node graph (it keeps marks for
every node) and this package turns it into :mod:`parity.nodes` trees. Doing the
conversion here, rather than through a library's constructors, is what lets parity
refuse duplicate keys, count alias expansion (alias bombs), read overlay tags, and
keep ``file:line`` on every key and value. ruamel.yaml (pure Python, YAML 1.2) is
the reference reader: libyaml reads a file only where it provably reads it as ruamel
does (scalars are resolved here by ruamel's YAML 1.2 rules, overlay tags are escaped
for libyaml and checked token by token, empty values get ruamel's line); a file with
an error, or with what the two read differently (tabs, %-directives, …), is read by
ruamel, so every result and message is ruamel's (tests/test_yamlio_fast.py pins it).

Output: renderers produce plain dicts/lists; :func:`dump_all` writes them with
``fastemit`` (a writer for plain data, byte-identical to PyYAML's libyaml dumper,
which it falls back to when unsure; see docs/performance.md), block style, indented
sequences, no folding, so the result is byte-stable and yamllint-clean. Files are
written atomically.

The modules, in reading order:

- ``inputs``: reading an input file safely (``read_input``, ``decode``), the limits
  (size, depth, node count, integer range) and the messages both readers share;
- ``reader``: ``load_file`` / ``parse_text``, which pick the reader;
- ``fast`` and ``fastconvert``: the libyaml reader (the hot path), with ``scalars``
  resolving plain scalars by YAML 1.2's rules;
- ``reference``: the ruamel reader (imported lazily: only files the fast reader is
  not sure about, and files with errors, need it);
- ``emit``: ``dump`` / ``dump_all`` / ``write_atomic``, and ``load_docs`` to read
  rendered output back; ``fastemit``: the plain-data writer ``dump_all`` tries first.
"""

from .emit import dump, dump_all, load_docs, write_atomic
from .inputs import (INT_MAX, INT_MIN, MAX_DEPTH, MAX_INPUT_BYTES, MAX_NODES, TagParser,
                     ValueRefused, decode, file_type, read_input)
from .reader import load_file, parse_text

__all__ = ["INT_MAX", "INT_MIN", "MAX_DEPTH", "MAX_INPUT_BYTES", "MAX_NODES", "TagParser",
           "ValueRefused", "decode", "dump", "dump_all", "file_type", "load_docs",
           "load_file", "parse_text", "read_input", "write_atomic"]
