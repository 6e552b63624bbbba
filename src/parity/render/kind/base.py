"""The state one kind render carries (:class:`Renderer`): the stack, the wave of each
service, the refusals collected so far (all of them are reported at once), and the
labels, selectors and metadata every object of the output shares."""

from __future__ import annotations

from ...errors import InputError, InputErrors
from ...model import Stack
from ..names import (ANNOTATION_WAVE, LABEL_COMPONENT, LABEL_MANAGED, LABEL_MANAGED_BY,
                     LABEL_PART_OF, LABEL_PHASE, LABEL_SERVICE, LABEL_STACK)


class Renderer:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.errors: list[InputError] = []
        self.wave = {name: i for i, wave in enumerate(stack.order()) for name in wave}
        self.resolve = stack.resolve  # reference maps built once per stack

    # ---------------------------------------------------------------- errors

    def error(self, path: str, message: str, hint: str) -> None:
        self.errors.append(InputError(message, path=path, hint=hint,
                                      layers=" -> ".join(self.stack.layers) or None))

    def raise_errors(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise InputErrors(self.errors)

    # ---------------------------------------------------------------- metadata

    def labels(self, phase: int, service: str | None = None) -> dict[str, str]:
        out = {LABEL_MANAGED_BY: "parity", LABEL_MANAGED: "true", LABEL_PHASE: str(phase),
               LABEL_STACK: self.stack.name}
        if service is not None:
            out.update({LABEL_COMPONENT: service, LABEL_PART_OF: self.stack.name,
                        LABEL_SERVICE: service})
        return dict(sorted(out.items()))

    def selector(self, service: str) -> dict[str, str]:
        return {LABEL_COMPONENT: service, LABEL_PART_OF: self.stack.name}

    def meta(self, name: str, phase: int, service: str | None = None,
             annotations: dict[str, str] | None = None, namespace: str | None = "") -> dict:
        out: dict = {"name": name}
        if namespace is not None:
            out["namespace"] = namespace or self.stack.namespace
        out["labels"] = self.labels(phase, service)
        notes = dict(annotations or {})
        if service is not None and service in self.wave:
            notes[ANNOTATION_WAVE] = str(self.wave[service])
        if notes:
            out["annotations"] = dict(sorted(notes.items()))
        return out
