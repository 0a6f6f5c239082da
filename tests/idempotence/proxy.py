"""A loopback TCP proxy that can drop a connection after the broker answered a Produce
request but before the client reads the answer: the client then retries a batch the
broker already appended, which is what idempotence must absorb."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

PRODUCE = 0


class DroppingProxy:
    def __init__(self, target_port: int, listen_port: int = 0) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", listen_port))
        self.port = self.listener.getsockname()[1]
        self.drop_produce_responses = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self.listener.close()
        for sock in list(self._sockets):
            _shut(sock)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            self._sockets += [client, upstream]
            api_keys: dict[int, int] = {}
            threading.Thread(
                target=self._requests, args=(client, upstream, api_keys), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(upstream, client, api_keys), daemon=True
            ).start()

    @staticmethod
    def _frame(sock: socket.socket) -> bytes | None:
        head = b""
        while len(head) < 4:
            chunk = sock.recv(4 - len(head))
            if not chunk:
                return None
            head += chunk
        size = struct.unpack(">i", head)[0]
        body = b""
        while len(body) < size:
            chunk = sock.recv(min(size - len(body), 1 << 20))
            if not chunk:
                return None
            body += chunk
        return head + body

    def _requests(self, src: socket.socket, dst: socket.socket, api_keys: dict[int, int]) -> None:
        try:
            while (frame := self._frame(src)) is not None:
                api_key, _version, correlation_id = struct.unpack_from(">hhi", frame, 4)
                api_keys[correlation_id] = api_key
                dst.sendall(frame)
        except OSError:
            pass
        finally:
            _shut(src)
            _shut(dst)

    def _responses(self, src: socket.socket, dst: socket.socket, api_keys: dict[int, int]) -> None:
        try:
            while (frame := self._frame(src)) is not None:
                correlation_id = struct.unpack_from(">i", frame, 4)[0]
                if api_keys.get(correlation_id) == PRODUCE and self._take_drop():
                    break  # the broker appended; the client never hears of it
                dst.sendall(frame)
        except OSError:
            pass
        finally:
            _shut(src)
            _shut(dst)

    def _take_drop(self) -> bool:
        with self._lock:
            if self.drop_produce_responses <= 0:
                return False
            self.drop_produce_responses -= 1
            self.dropped += 1
            return True


def _shut(sock: socket.socket) -> None:
    """Closes at once: shutdown wakes the thread blocked reading the same socket."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
