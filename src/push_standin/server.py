"""Serve an ASGI app on 127.0.0.1 in a thread of its own (hypercorn: HTTP/1.1, or HTTP/2 over
TLS with ALPN h2 when given a certificate), on a free port chosen by the kernel."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from types import TracebackType
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config


class ThreadServer:
    def __init__(
        self,
        app: Any,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        h2_only: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.config = Config()
        # hypercorn closes the socket it is given: it gets a duplicate, this one stays ours
        self.config.bind = [f"fd://{os.dup(self._sock.fileno())}"]
        self.config.accesslog = None
        self.config.errorlog = None
        self.config.graceful_timeout = 0.2
        # hypercorn ends a connection after 1,000 requests by default (GOAWAY on HTTP/2): the
        # services keep theirs open for hours, and a 100,000-push benchmark would measure
        # reconnects that the real services do not cause
        self.config.keep_alive_max_requests = 10_000_000
        if certfile and keyfile:
            self.config.certfile, self.config.keyfile = certfile, keyfile
            if h2_only:  # APNs speaks HTTP/2 only
                self.config.alpn_protocols = ["h2"]
        self.scheme = "https" if certfile else "http"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="push-standin", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()

        async def main() -> None:
            assert self._stop is not None
            self._ready.set()
            await serve(self.app, self.config, shutdown_trigger=self._stop.wait)

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def start(self) -> ThreadServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
