"""Regenerate the vendored Gateway API CRDs and the schemas the render checks use.

kubernetes-validate knows only core Kubernetes kinds; ``Gateway``, ``HTTPRoute`` and
``GatewayClass`` are CRDs. The kind lane's edge controller (Traefik v3.6) implements
the standard channel of ``sigs.k8s.io/gateway-api`` v1.4.0, so parity vendors that
release: the CRD files exactly as the module ships them (the driver installs them,
``parity.edgecrds``), and the ``openAPIV3Schema`` of each version of the three kinds
parity renders (the offline lane validates against them). This script fetches the
module through the Go module proxy (the only route to it on the project's machines)
and checks it against the pinned go.sum hash, so neither the tests nor ``up`` need
Go or the network:

    python src/parity/schemas/vendor_gateway_api.py            # go mod download, then extract
    python src/parity/schemas/vendor_gateway_api.py MODULE_DIR # extract from an unpacked module

Written under ``gateway-api-v1.4.0/``: ``crds/*.yaml`` and ``crds/SHA256SUMS`` (the
module's standard-channel CRDs, byte for byte), and ``{gateway,httproute,
gatewayclass}.json``, each ``{"crd", "bundle_version", "channel", "source",
"source_sha256", "versions": {NAME: openAPIV3Schema}}``. ``description`` keywords are
dropped from the JSON (they are documentation only and are 80% of the bytes); every
other keyword, including the ``x-kubernetes-*`` extensions and CEL rules, is kept
verbatim. Rerun after bumping ``VERSION`` and ``MODULE_SUM`` and review the diff.
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
VERSION = "v1.4.0"
MODULE_SUM = "h1:ZwlNM6zOHq0h3WUX2gfByPs2yAEsy/EenYJB78jpQfQ="
STANDARD = "config/crd/standard"
CRDS = {
    "gateway": f"{STANDARD}/gateway.networking.k8s.io_gateways.yaml",
    "httproute": f"{STANDARD}/gateway.networking.k8s.io_httproutes.yaml",
    "gatewayclass": f"{STANDARD}/gateway.networking.k8s.io_gatewayclasses.yaml",
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
    info = json.loads(out)
    if info["Sum"] != MODULE_SUM:
        raise SystemExit(f"{MODULE}@{VERSION} has sum {info['Sum']}, expected {MODULE_SUM}")
    return Path(info["Dir"])


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


def copy_crds(root: Path) -> None:
    """The standard channel's CRD files, unchanged, and their SHA-256 sums."""
    crds = OUT / "crds"
    crds.mkdir(parents=True, exist_ok=True)
    for old in crds.glob("*.yaml"):
        old.unlink()
    sums = []
    for src in sorted((root / STANDARD).glob("*.yaml")):
        raw = src.read_bytes()
        (crds / src.name).write_bytes(raw)
        sums.append(f"{hashlib.sha256(raw).hexdigest()}  {src.name}\n")
    (crds / "SHA256SUMS").write_text(
        f"# {MODULE}@{VERSION} ({MODULE_SUM}), {STANDARD}/\n" + "".join(sums),
        encoding="utf-8")
    print(f"wrote {len(sums)} CRDs and SHA256SUMS to {crds}")


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else module_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    copy_crds(root)
    for name, data in extract(root).items():
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path} ({', '.join(data['versions'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
