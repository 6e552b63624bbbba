"""One cold operation in a fresh interpreter (the benchmark times this process).

    python bench/_once.py render ROOT MODE PHASE   model.load + render (no write)
    python bench/_once.py diff ROOT PHASE          model-level diff compose -> kind

Includes interpreter start, imports and parsing: what a user waits for.
"""

import os
import sys
from pathlib import Path

# the source under test: this checkout's src/, or BENCH_SRC (to compare a change)
sys.path.insert(0, os.environ.get("BENCH_SRC") or str(Path(__file__).resolve().parent.parent
                                                      / "src"))


def main(argv: list[str]) -> int:
    what, root = argv[0], Path(argv[1])
    from parity import cli

    if what == "render":
        from parity import model
        from parity.render import RenderContext, render

        mode, phase = argv[2], int(argv[3])
        files = render(model.load(root, cli.selection(mode, phase)).stack, RenderContext())
        return 0 if files else 1
    if what == "diff":
        text, _code = cli.diff(root, "compose", "kind", int(argv[2]), "model", "text")
        return 0 if text else 1
    raise SystemExit(f"unknown operation {what}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
