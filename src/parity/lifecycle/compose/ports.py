"""Host ports: is one free, and who listens on it (both lanes' preflight)."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess


def port_free(address: str, port: int) -> bool:
    """True when ``address:port`` can be bound now (nobody listens there)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        s.close()


def who_listens(port: int) -> str:
    """`` (users:…)`` naming the process listening on ``port`` (from ``ss``), or ''."""
    if not shutil.which("ss"):
        return ""
    proc = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                          text=True)
    users = proc.stdout.split("users:")
    return f" ({users[1].strip()})" if len(users) > 1 else ""
