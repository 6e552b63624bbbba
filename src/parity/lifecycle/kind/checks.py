"""The kind lane's named checks for ``inv doctor`` (:meth:`KindPreflight.preflight`):
everything the lane needs, each reported, the warn-only ones included. Nothing is
created, pulled or changed, and the user's kube context is only named, never used.
"""

from __future__ import annotations

from pathlib import Path

from ... import docker, images
from ...errors import ParityError
from ...findings import FAIL, OK, WARN, Finding, pull_finding, version_text
from ...render.edge import CRD_DIR, GATEWAY_API_VERSION, gateway_api_crds
from .kubeconfig import user_current_context


def image_store() -> Finding:
    proc = docker.run(["docker", "info", "--format", "{{json .DriverStatus}}"], check=False,
                      timeout=20)
    text = proc.stdout or ""
    if "io.containerd.snapshotter" in text:
        return Finding("image store", WARN, "Docker's containerd image store is enabled",
                       "kind load can fail with it (kubernetes-sigs/kind#3795): if images do "
                       "not reach the node, switch back to the classic store")
    return Finding("image store", OK, "classic (kind load works)")


def kube_context(root: Path, cluster: str) -> Finding:
    """Read (never use) the user's current context, to say parity leaves it alone."""
    current, skipped = user_current_context()
    own = root / ".parity" / "kind" / "kubeconfig"
    detail = (f"your current context '{current}' is never used"
              if current else "no current context of yours")
    detail += (f"; parity talks only to {own.relative_to(root)} (context kind-{cluster}, "
               "on loopback)")
    if skipped:
        detail += "; skipped (unreadable, and unused by parity): " + "; ".join(skipped[:3]) \
            + (f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else "")
    return Finding("kube context", OK, detail)


def privileged() -> Finding:
    """kind's nodes need docker run --privileged; say whether this engine allows it,
    and through what. The shim (decision 0010) is named, never applied."""
    ok, detail = docker.privileged_probe()
    shim = docker.shim_in_use()
    if ok is False:
        return Finding("privileged nodes", FAIL, detail, docker.SHIM_HINT)
    if ok is None:
        return Finding("privileged nodes", WARN, f"not checked: {detail}",
                       "if kind create fails with 'unable to apply caps': "
                       + docker.SHIM_HINT)
    if shim:
        return Finding("privileged nodes", OK, f"{detail} through the docker shim {shim} "
                                               "(decision 0010: only for machines whose "
                                               "Docker cannot)")
    return Finding("privileged nodes", OK, detail)


def runtime_images(stack, root: Path) -> list[Finding]:
    """The kind node image and the edge controller: present, or built by up (with
    what it needs), or pulled by kind/the node from a registry."""
    fresh = images.freshness(stack, root)
    out = []
    for check, runtime in (("node image", stack.kind_node), ("edge controller",
                                                             stack.kind_edge)):
        where = stack.where(f"{runtime.name}.image") or runtime.name
        if runtime.image in fresh:
            ib, state = fresh[runtime.image]
            missing = ib.script.missing() if ib.script else []
            if state == "up to date":
                out.append(Finding(check, OK, f"{runtime.image} built, up to date"))
            elif missing:
                out.append(Finding(check, FAIL, f"{runtime.image} ({where}) is {state}; its "
                                   f"build ({ib.rel}) needs "
                                   + ", ".join(n.command for n in missing),
                                   "; ".join(n.hint for n in missing)))
            else:
                out.append(Finding(check, OK, f"{runtime.image}: {state}; up builds it from "
                                   f"{ib.rel} (the first build takes minutes and needs the "
                                   "Go module proxy" + (" and a Debian mirror"
                                                        if ib.script and ib.script.root
                                                        else "") + ")"))
        elif images.local_image(runtime.image) is not None:
            out.append(Finding(check, OK, f"{runtime.image} present"))
        else:
            out.append(pull_finding(check, [runtime.image], f"not here ({where})",
                                     "kind" if check == "node image" else "the node"))
    out.append(edge_manifests())
    return out


def edge_manifests() -> Finding:
    """The Gateway API CRDs up installs: vendored, and every file as pinned."""
    try:
        crds, _ = gateway_api_crds()
    except (ParityError, OSError) as exc:
        message = exc.message if isinstance(exc, ParityError) else str(exc)
        return Finding("edge manifests", FAIL, message,
                       "git checkout -- src/parity/schemas (the vendored CRDs)")
    return Finding("edge manifests", OK, f"Gateway API {GATEWAY_API_VERSION} standard CRDs, "
                                         f"{len(crds)} files match {CRD_DIR.name}/SHA256SUMS")


def kubectl(lane) -> Finding:
    version = lane.check_kubectl()
    node = lane.node()
    if version is None:
        return Finding("kubectl", WARN, "not installed; parity does not need it",
                       f"to look around yourself: docker exec {node} kubectl --kubeconfig "
                       "/etc/kubernetes/admin.conf get pods -A")
    return Finding("kubectl", OK, f"kubectl {version_text(version)} (yours; parity talks to the API "
                                  f"itself): kubectl --kubeconfig .parity/kind/kubeconfig …")
