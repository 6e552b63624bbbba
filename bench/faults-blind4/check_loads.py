"""Check that every case of this corpus still loads: after its edits, parity.model.load
must succeed for compose and kind, phases 1-3, image profiles default and offline.

    PYTHONPATH=src .venv/bin/python bench/faults-blind4/check_loads.py [CORPUS] [SUBSTRING]
"""
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from parity import model
from parity.model import Selection

REPO = Path(__file__).resolve().parents[2]
corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
only = sys.argv[2] if len(sys.argv) > 2 else ""
bad = 0
for case in sorted(corpus.glob("*/*.yaml")):
    if only not in str(case):
        continue
    spec = yaml.safe_load(case.read_text())
    assert set(spec) <= {"description", "expect", "edit", "where"}, case
    assert spec["expect"] in ("caught", "clean"), case
    if spec["expect"] == "caught":
        assert spec.get("where"), case
    else:
        assert "where" not in spec and case.parent.name == "legit", case
    tmp = Path(tempfile.mkdtemp())
    try:
        for d in ("base", "overlays", "images", "apps", "checks"):
            shutil.copytree(REPO / d, tmp / d, symlinks=True,
                            ignore=shutil.ignore_patterns("local") if d == "overlays" else None)
        for e in spec["edit"]:
            p = tmp / e["file"]
            if e["action"] == "append":
                assert p.exists(), (case, e["file"])
                p.write_text(p.read_text() + e["text"])
            elif e["action"] == "replace":
                assert p.exists(), (case, e["file"])
                p.write_text(e["text"])
            elif e["action"] == "create":
                assert not p.exists(), (case, e["file"])
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(e["text"])
            else:
                raise AssertionError(e["action"])
        if spec["expect"] == "caught":
            assert any(e["file"] == spec["where"] for e in spec["edit"]), (case, "where not edited")
        for mode in ("compose", "kind"):
            for phase in (1, 2, 3):
                for profile in ("default", "offline"):
                    try:
                        model.load(tmp, Selection(mode=mode, phase=phase, profile=profile))
                    except Exception as exc:
                        bad += 1
                        print(f"FAIL {case.relative_to(corpus)} {mode} {phase} {profile}: {str(exc)[:400]}")
                        raise StopIteration
    except StopIteration:
        pass
    finally:
        shutil.rmtree(tmp)
print("failures:", bad)
