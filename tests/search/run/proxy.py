"""A TCP proxy on loopback that can stall: while stalled it holds every byte it receives (it
reads them, so the kernel acknowledges them, and forwards nothing), as a network that hangs."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading


class StallingProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Read everything at once; send it on, in order, only while flowing."""
        chunks: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._send, args=(chunks, sink), daemon=True).start()
        with contextlib.suppress(OSError):
            while not self._closed:
                data = source.recv(65536)
                if not data:
                    break
                chunks.put(data)
        chunks.put(b"")

    def _send(self, chunks: queue.Queue[bytes], sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = chunks.get()
                self._flowing.wait()
                if not data or self._closed:
                    break
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
