"""
Adapter: tell whether the runner a stored job names (``"<host>:<pid>"``) is still alive.

The same test as the ``routilux`` command's (private there); a public
``routilux.store.runner_alive(record) -> bool`` is to replace this module.
"""

from __future__ import annotations

import os

from routilux.store import JobRecord, default_worker_id


__all__ = ["runner_alive"]


def runner_alive(record: JobRecord) -> bool:
    """
    Return whether the runner of ``record`` may still run it: ``False`` only for a runner of
    this host whose process is gone (another host's runner is assumed alive).
    """
    if not record.worker:
        return False
    host, _, pid = record.worker.rpartition(":")
    if host != default_worker_id().rpartition(":")[0] or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
