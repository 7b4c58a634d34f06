"""The sandbox server's listening socket: taken on entry (the port is known at once), served
by server.py once the first client connects. Its own module so that the package's entry and
the server share it without importing each other."""

from __future__ import annotations

import socket

# socketserver listens with a backlog of 5: fifty clients connecting at once (a rotation's
# parallel restarts) overflowed it, and the kernel dropped the SYNs of the rest, which the
# clients sent again a second later (TCP's initial retransmission timeout) — a stall no
# Databricks front end causes. Connections are accepted as fast as they come.
LISTEN_BACKLOG = 1024


def listen_loopback(port: int = 0) -> socket.socket:
    """A loopback port (0: a free one), listening: the sandbox server's socket (server.py takes it)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(LISTEN_BACKLOG)
    return listener
