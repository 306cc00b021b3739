"""A TCP proxy in front of a real server that can stage an outage: every open connection is
cut and new ones are refused for a while, as clients see a database restart or failover; or
the server goes silent: connections stay open and new ones are accepted, but nothing is
answered, as clients see a hung or frozen database (`silent_server`: one silent from the start)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class TCPProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._silent = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TCPProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closed.set()
        self._listener.close()
        self._cut()

    def outage(self, seconds: float) -> None:
        """Cut every connection now and refuse new ones for `seconds`."""
        self._down_until = time.monotonic() + seconds
        self._cut()

    def silence(self) -> None:
        """From now on pass nothing on and answer nothing, on open and new connections."""
        self._silent.set()

    def _cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                client.close()  # refused while "restarting"
                continue
            if self._silent.is_set():
                with self._lock:
                    self._sockets.add(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self._silent.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def silent_server() -> Iterator[int]:
    """The port of a server that accepts every connection and never says a word: a hung
    database or Redis, as its clients see it."""
    with TCPProxy(target_port=1) as proxy:  # nothing behind it: silent from the start
        proxy.silence()
        yield proxy.port
