#!/bin/sh
# node-bootstrap 0.1.0 -- the reference node bootstrap artifact of the parity
# default stack. The bootstrap-artifacts job uploads this file to the registry
# as a blob and records its name, version, sha256 and download URL in Vault.
# A real platform ships its own artifact here; this one only reports itself.
set -eu
echo "node-bootstrap 0.1.0: nothing to do on $(uname -n)"
