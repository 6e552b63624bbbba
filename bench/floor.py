"""The libyaml floor of a render: one fresh process that does the YAML work a render
cannot avoid, with PyYAML's C loader and C dumper, and nothing else.

    python bench/floor.py OUTPUTS.pickle OUT_DIR INPUT.yaml...

It parses every INPUT (yaml.CSafeLoader; parity's overlay tags such as ``!merge``
become plain values) and writes the documents of OUTPUTS.pickle ({file name: [docs]},
read back from parity's own output by the benchmark, untimed) to OUT_DIR with
yaml.CSafeDumper. The benchmark times this process as it times ``inv render``.
"""

import pickle
import sys
from pathlib import Path

import yaml


class Loader(yaml.CSafeLoader):
    """CSafeLoader that takes any local tag (``!merge``, ``!append``) as its plain value."""


def _untagged(loader: Loader, _suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


Loader.add_multi_constructor("!", _untagged)


def main(argv: list[str]) -> int:
    outputs, out = Path(argv[0]), Path(argv[1])
    parsed = [list(yaml.load_all(Path(f).read_bytes(), Loader=Loader)) for f in argv[2:]]
    out.mkdir(parents=True, exist_ok=True)
    for name, docs in pickle.loads(outputs.read_bytes()).items():
        with open(out / name, "w") as fh:
            yaml.dump_all(docs, fh, Dumper=yaml.CSafeDumper, explicit_start=True,
                          sort_keys=False, default_flow_style=False)
    return 0 if parsed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
