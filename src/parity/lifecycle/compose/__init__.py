"""The compose lane: parity's Compose project, one per stack.

- :mod:`.lane`: :class:`ComposeLane`, up (its steps), ownership checks and down;
- :mod:`.status`: what the project runs now (the status table, the live checks);
- :mod:`.ports`: is a host port free, and who listens on it (the kind lane asks too).
"""

from .lane import MIN_FREE_BYTES, ComposeLane
from .ports import port_free, who_listens

__all__ = ["MIN_FREE_BYTES", "ComposeLane", "port_free", "who_listens"]
