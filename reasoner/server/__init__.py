"""`reasoner serve`: the decision store over HTTP, on Starlette served by uvicorn.

- `app`: the ASGI application (routes, security headers, host and cross-site checks);
- `queries` and `worker`: queries in killable worker processes under time and size limits;
- `sparqlcheck`: what a query may reach (no SERVICE, LOAD or remote FROM unless allowed);
- `pages`: the determination pages' data (templates in ``reasoner/web/templates/``).

`make_server` binds the socket and returns a `Server` (``serve_forever``, ``shutdown``,
``server_close``, ``server_address``). docs/security.md says what the server promises and what
the operator must configure.
"""

from __future__ import annotations

import ipaddress
import socket
import threading

from ..store import KB_GRAPH

LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _protocol(header_timeout: float):
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        """uvicorn's h11 protocol plus a request-header timeout: a connection that has not sent
        a whole request head within `header_timeout` seconds of opening (or of its previous
        response) is closed, so half-open and slow-header connections cannot pile up."""

        _timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def _arm(self):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(header_timeout, self._expire)

        def _expire(self):
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc):
            if self._timer is not None:
                self._timer.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


class Server:
    """A bound uvicorn server for the app (not yet serving: call `serve_forever`)."""

    def __init__(self, app, sock: socket.socket, *, max_connections: int = 64,
                 keep_alive: float = 5.0, header_timeout: float = 10.0,
                 max_header_bytes: int = 16 * 1024):
        import uvicorn

        self.app, self.socket = app, sock
        self.server_address = sock.getsockname()[:2]
        config = uvicorn.Config(
            app, http=_protocol(header_timeout), lifespan="on", log_level="warning",
            access_log=False, server_header=False, date_header=True,
            limit_concurrency=max_connections, timeout_keep_alive=keep_alive,
            h11_max_incomplete_event_size=max_header_bytes, timeout_graceful_shutdown=3)
        self.uvicorn = uvicorn.Server(config)
        self._serving, self._stopped = threading.Event(), threading.Event()

    def serve_forever(self) -> None:
        self._serving.set()
        self._stopped.clear()
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` (running in another thread) and wait for it to return."""
        self.uvicorn.should_exit = True
        if self._serving.is_set():
            self._stopped.wait(timeout=15)

    def server_close(self) -> None:
        self.socket.close()
        runner = getattr(self.app.state, "runner", None)
        if runner is not None:
            runner.close()


def make_server(store, host: str = "127.0.0.1", port: int = 8000,
                write_token: str | None = None, root=None, settings=None,
                **server_options) -> Server:
    """A server over `store` (an `EmbeddedStore`). Loads the knowledge graph into the store
    first, so that queries can join records with criteria and evidence, then binds the socket
    (an `OSError` when it cannot)."""
    from .app import Settings, make_app

    store.ensure_kb(root)
    settings = settings or Settings()
    settings.write_token = write_token or settings.write_token or None
    settings.root = root or settings.root
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bare, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    names = set(settings.hosts) | {host.lower(), f"[{bare}]" if ":" in bare else bare}
    settings.hosts = tuple(sorted(names))
    app = make_app(store, settings)
    return Server(app, sock, **server_options)


__all__ = ["make_server", "Server", "is_loopback", "KB_GRAPH"]
