"""The kind lane: parity's kind cluster, one per stack.

- :mod:`.lane`: :class:`KindLane`, the order of ``up``'s steps, and ``down``; it is
  assembled from one class per responsibility: :mod:`.preflight`, :mod:`.cluster`
  (kind, the node, the cluster's record and owner), :mod:`.load` (images on the
  node), :mod:`.data` (data kept across clusters), :mod:`.edge` (CRDs, edge
  controller, DNS, Gateway and route waits), :mod:`.apply` (secrets, apply wave by
  wave, prune) and :mod:`.status` (status rows, live checks);
- :mod:`.plan`: what ``up`` will do, from what it observed (pure);
- :mod:`.readiness` and :mod:`.diagnosis`: object status in, a verdict out (pure);
- :mod:`.kube`: the one door to the Kubernetes API; :mod:`.kubeconfig`: the guard on
  the file it reads and the environment of kind/kubectl subprocesses;
- :mod:`.kindcli`: which kind binary runs, and building the pinned one.
"""

from .cluster import STATE_CONFIGMAP
from .kube import FIELD_MANAGER, Kube
from .kubeconfig import Unreadable, check_kubeconfig, read_small_file, subprocess_env
from .lane import KindLane
from .plan import Action, Observed, image_actions, plan
from .readiness import Verdict, evaluate, pods_for, pvcs_for, service_status

__all__ = ["STATE_CONFIGMAP", "FIELD_MANAGER", "Kube", "Unreadable", "check_kubeconfig",
           "read_small_file", "subprocess_env", "KindLane", "Action", "Observed",
           "image_actions", "plan", "Verdict", "evaluate", "pods_for", "pvcs_for",
           "service_status"]
