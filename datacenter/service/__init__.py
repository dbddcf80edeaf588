"""The service wing: the watch loop that imports each complete file once.

:class:`Service` is the loop; :mod:`.watcher` turns events into hints,
:mod:`.readiness` decides when a file is complete, :mod:`.intake` takes it,
imports it and acts on the result, :mod:`.verdicts` keeps what is left
alone until it changes, :mod:`.voice` is what the service says, and
:mod:`.state` is what others read of it.
"""

from datacenter.service.service import Service
from datacenter.service.state import (
    KINDS,
    StateFile,
    read_state,
    service_running,
    service_status,
)

__all__ = ["KINDS", "Service", "StateFile", "read_state", "service_running", "service_status"]
