#!/usr/bin/env bash
# Stage 2 proof for CI (docs/decisions/0010): build the offline kind node image
# (cached), create a cluster from it through the docker shim, require the node to
# be Ready, and always delete the cluster again.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KUBECONFIG_FILE=/tmp/stage2.kubeconfig
bash "$HERE/build.sh" build
trap 'bash "$HERE/build.sh" delete >/dev/null 2>&1 || true; rm -f "$KUBECONFIG_FILE"' EXIT
bash "$HERE/build.sh" delete >/dev/null 2>&1 || true
bash "$HERE/build.sh" cluster
kubectl --kubeconfig "$KUBECONFIG_FILE" wait --for=condition=Ready node --all --timeout=180s
kubectl --kubeconfig "$KUBECONFIG_FILE" get nodes -o wide
echo "==> stage 2: kind create cluster --image parity-kind-node succeeded; node Ready"
