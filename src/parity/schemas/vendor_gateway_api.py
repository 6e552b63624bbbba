"""Regenerate the vendored Gateway API schemas the kind render tests validate against.

kubernetes-validate knows only core Kubernetes kinds; ``Gateway`` and ``HTTPRoute``
are CRDs. Their real schemas are the ``openAPIV3Schema`` of each version of the
standard-channel CRDs of ``sigs.k8s.io/gateway-api`` v1.2.1. This script fetches
the module through the Go module proxy (the only route to it on the project's
machines), extracts those schemas and writes them as JSON next to this file, so
the tests need neither Go nor the network:

    python src/parity/schemas/vendor_gateway_api.py            # go mod download, then extract
    python src/parity/schemas/vendor_gateway_api.py MODULE_DIR # extract from an unpacked module

Written: ``gateway-api-v1.2.1/{gateway,httproute}.json``, each
``{"crd", "bundle_version", "channel", "source", "source_sha256", "versions": {NAME:
openAPIV3Schema}}``. ``description`` keywords are dropped (they are documentation
only and are 80% of the bytes); every other keyword, including the
``x-kubernetes-*`` extensions and CEL rules, is kept verbatim. Rerun after bumping
``VERSION`` and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

MODULE = "sigs.k8s.io/gateway-api"
VERSION = "v1.2.1"
CRDS = {
    "gateway": "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
    "httproute": "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
}
OUT = Path(__file__).resolve().parent / f"gateway-api-{VERSION}"

_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def module_dir() -> Path:
    """Download the module with the Go toolchain and return its directory."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["go", "mod", "init", "vendor.local/x"], cwd=tmp, check=True,
                       capture_output=True)
        out = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"],
                             cwd=tmp, check=True, capture_output=True, text=True).stdout
    return Path(json.loads(out)["Dir"])


def strip_descriptions(node):
    """Drop the ``description`` keyword of every schema node (not a property that
    happens to be named ``description``)."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, dict):
            out[key] = strip_descriptions(value)
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [strip_descriptions(sub) for sub in value]
        else:
            out[key] = value
    return out


def extract(root: Path) -> dict[str, dict]:
    result = {}
    for name, rel in CRDS.items():
        raw = (root / rel).read_bytes()
        crd = yaml.safe_load(raw)
        annotations = crd["metadata"].get("annotations", {})
        result[name] = {
            "crd": crd["metadata"]["name"],
            "bundle_version": annotations.get("gateway.networking.k8s.io/bundle-version"),
            "channel": annotations.get("gateway.networking.k8s.io/channel"),
            "source": f"{MODULE}@{VERSION}/{rel}",
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "versions": {v["name"]: strip_descriptions(v["schema"]["openAPIV3Schema"])
                         for v in crd["spec"]["versions"]},
        }
    return result


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else module_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in extract(root).items():
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path} ({', '.join(data['versions'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
