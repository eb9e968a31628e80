"""A TCP forwarder on 127.0.0.1 that can be shut (connections refused, open ones cut) and opened
again, or hung (connections accepted and kept, nothing forwarded either way: a server that stopped
answering): a database or Redis "outage" without touching the shared server behind it."""

from __future__ import annotations

import socket
import threading

__all__ = ["TcpGate"]


class TcpGate:
    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._lsock: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = port
        self.hung = False
        self.open()

    def hang(self) -> None:
        """Keep every connection open and accept new ones, but forward nothing (bytes are dropped)."""
        self.hung = True

    def unhang(self) -> None:
        self.hung = False

    def open(self) -> None:
        with self._lock:
            if self._lsock is not None:
                return
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(512)
            self.port = s.getsockname()[1]
            self._lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def shut(self) -> None:
        """Refuse new connections and cut every open one."""
        with self._lock:
            s, self._lsock = self._lsock, None
            conns, self._conns = self._conns, set()
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    close = shut

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                client, _ = s.accept()
            except OSError:
                return
            if self.hung:  # accepted, never answered
                with self._lock:
                    self._conns.add(client)
                threading.Thread(target=self._pipe, args=(client, None), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._lsock is not s:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: "socket.socket | None") -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if b is not None and not self.hung:
                    b.sendall(data)
        except OSError:
            pass
        finally:
            for c in (a, b) if b is not None else (a,):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._conns.discard(a)
                self._conns.discard(b)
            a.close()

    def __enter__(self) -> "TcpGate":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shut()
