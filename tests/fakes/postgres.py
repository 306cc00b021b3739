"""A PostgreSQL that stops answering: the real server behind a proxy that can go silent."""

from __future__ import annotations

import select
import socket
import threading


class PostgresProxy:
    """A TCP proxy in front of the real PostgreSQL: forwards until told to go silent (accept
    connections, pass nothing on, answer nothing: a hung server) or to refuse (close
    everything and stop listening: a server that is down)."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.mode = "forward"
        self.server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(client)
            if self.mode == "forward":
                upstream = socket.create_connection(self.target)
                self.conns.append(upstream)
                threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        while True:
            try:
                ready, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.mode == "forward":
                        pair[sock].sendall(data)
            except OSError:
                return

    def silence(self) -> None:
        self.mode = "silent"

    def refuse(self) -> None:
        self.mode = "refuse"
        self.server.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass

    def url_for(self, database_url: str) -> str:
        """`database_url` (of the real server) pointed at this proxy instead."""
        from sqlalchemy.engine import make_url

        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def close(self) -> None:
        self.refuse()
