"""Cross-reference lint over rendered output: every name one object uses to find
another must resolve inside the same render.

Schema validation (kubernetes-validate, ``docker compose config``) proves each
object is well formed on its own; it cannot see that a Service selects no pod, that
a probe names a port the container does not have, or that a ``secretKeyRef`` asks
for a key its Secret will never hold. Those mistakes only show on a live cluster,
late and one at a time; this module finds all of them offline.

``lint_kind(docs, stack)`` checks the documents of ``manifests.yaml``;
``lint_compose(compose, stack)`` checks a compose file as a dict. Both are pure and
return every :class:`Finding` (empty when clean), each naming the object, the
field and what is wrong, e.g.::

    Service/api spec.selector: selects app.kubernetes.io/name=apx, which no pod
    template carries

Objects the kind driver creates itself (:data:`parity.render.names.DRIVER_PROVIDED`)
count as present. Work is linear in the number of documents: each check reads
indexes built once.

The modules: ``finding`` (:class:`Finding`), ``kind`` (:func:`lint_kind`) and
``compose`` (:func:`lint_compose`).
"""

from .compose import lint_compose
from .finding import Finding
from .kind import WORKLOAD_KINDS, lint_kind

__all__ = ["WORKLOAD_KINDS", "Finding", "lint_compose", "lint_kind"]
