"""Runs the app under uvicorn on a port bound up front, and drains on SIGTERM.

The port is bound before the models load, so a port in use fails at once with a clear error
(and port 0 picks a free one, printed in the "listening on" line).

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets every request in flight finish
(their queued micro-batches included) for up to `drain_seconds`, then runs the app's shutdown,
which answers anything still queued and stops the batchers. uvicorn then re-raises the signal
with the handlers that were installed before it started; those are no-ops here, so a drained
server exits with status 0 instead of dying by the signal.
"""

from __future__ import annotations

import signal
import socket

from dlkeras.errors import RunError


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening.

    Raises:
        RunError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # whose proto is IPPROTO_TCP; with proto 0 every keep-alive response waited ~40 ms for an ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RunError(f"cannot listen on {host}:{port} ({error.strerror or error}); choose another "
                       "--port (0 picks a free one) or --host") from None
    return sock


def address(sock: socket.socket) -> str:
    """The http:// address a bound socket answers on."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(app, sock: socket.socket, drain_seconds: float = 30.0, access_log: bool = False,
        log_level: str = "info") -> None:
    """Serves `app` on `sock` until SIGTERM or Ctrl-C, then drains and returns."""
    import uvicorn

    config = uvicorn.Config(app, lifespan="on", log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=drain_seconds)
    server = uvicorn.Server(config)
    for stop in (signal.SIGTERM, signal.SIGINT):  # what uvicorn re-raises after draining
        signal.signal(stop, lambda *_: None)
    server.run(sockets=[sock])
