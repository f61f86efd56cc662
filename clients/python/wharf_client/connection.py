"""One authenticated admin connection: requests matched to replies by id, and watch streams.

No background thread: whichever caller is waiting reads the socket for everyone (the "leader"),
hands other callers' replies and watch events to their slots, and passes the socket on when its
own reply has come. An awaited call therefore costs one send and one receive in the caller's
thread, as with multiprocessing's Manager, and pipelined calls share the reads.
"""
from __future__ import annotations

import collections
import socket
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional

from .errors import ConnectionClosedError, StateTimeoutError, WharfError, from_wire
from .wire import FrameReader, request_frame

_UNSET = object()


class Reply:
    """A request on its way: ``result()`` waits for the reply (reading the socket if nobody else is)."""

    __slots__ = ("_connection", "id", "method", "_value", "_error", "_unsent")

    def __init__(self, connection: "Connection", request_id: int, method: str):
        self._connection = connection
        self.id = request_id
        self.method = method
        self._value: Any = _UNSET
        self._error: Optional[BaseException] = None
        #: Set while the request waits in a pipeline's buffer: waiting for it sends the buffer first.
        self._unsent: Optional[Callable[[], None]] = None

    def done(self) -> bool:
        return self._value is not _UNSET or self._error is not None

    def result(self, timeout: Optional[float] = _UNSET) -> Any:  # type: ignore[assignment]
        if self._unsent is not None:
            self._unsent()
        if not self.done():
            self._connection._wait(self.done, self._connection.call_timeout if timeout is _UNSET else timeout, f"the reply to {self.method} (id {self.id})")
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout: Optional[float] = _UNSET) -> Optional[BaseException]:  # type: ignore[assignment]
        try:
            self.result(timeout)
        except WharfError as error:
            return error
        return None

    def _settle(self, frame: Dict[str, Any]) -> None:
        if frame.get("ok") is True:
            self._value = frame.get("result")
        else:
            self._error = from_wire(frame.get("error"), method=self.method, id=self.id)

    def _fail(self, error: BaseException) -> None:
        if not self.done():
            self._error = error


class Connection:
    def __init__(self, sock: socket.socket, reader: FrameReader, welcome: Dict[str, Any], address: str, call_timeout: Optional[float]):
        self._sock = sock
        self._reader = reader
        self.address = address
        self.server_pid: int = welcome.get("pid", 0)
        self.methods: List[str] = list(welcome.get("methods", []))
        self.call_timeout = call_timeout
        self._cond = threading.Condition(threading.Lock())
        self._send_lock = threading.Lock()
        self._reading = False
        self._next_id = 1
        self._pending: Dict[int, Reply] = {}
        self._watches: Dict[int, Deque[Any]] = {}
        self._closed: Optional[BaseException] = None
        self._last_error: Optional[WharfError] = None
        sock.settimeout(None)

    # ---- sending -----------------------------------------------------------------------------

    def submit(self, method: str, params: Any = None, events: Optional[Deque[Any]] = None) -> Reply:
        """Sends a request and returns at once; the reply is matched to it by id. ``events``
        receives the events that carry this request's id (a state.watch)."""
        reply, frame = self.prepare(method, params, events)
        self.send(frame)
        return reply

    def prepare(self, method: str, params: Any = None, events: Optional[Deque[Any]] = None) -> "tuple[Reply, bytes]":
        """A request registered under a new id, and its frame, to be sent with ``send``."""
        with self._cond:
            if self._closed is not None:
                raise self._closed
            request_id = self._next_id
            self._next_id += 1
            reply = Reply(self, request_id, method)
            self._pending[request_id] = reply
            if events is not None:
                self._watches[request_id] = events
        return reply, request_frame(request_id, method, params)

    def call(self, method: str, params: Any = None, timeout: Optional[float] = _UNSET) -> Any:  # type: ignore[assignment]
        return self.submit(method, params).result(timeout)

    def send(self, data: bytes) -> None:
        """Writes prepared frames (one, or several joined: one system call for a whole pipeline)."""
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except OSError as error:
                self._shutdown(ConnectionClosedError("ERR_ADMIN_CLOSED", f"cannot write to the supervisor at {self.address}: {error}"))
                raise self._closed  # type: ignore[misc]

    # ---- watches -----------------------------------------------------------------------------

    def open_watch(self, name: Optional[str]) -> "tuple[Reply, Deque[Any]]":
        """Starts a watch; its events (which may come before its reply) go to the returned deque."""
        events: Deque[Any] = collections.deque()
        reply = self.submit("state.watch", {} if name is None else {"name": name}, events)
        return reply, events

    def drop_watch(self, watch_id: int) -> None:
        with self._cond:
            self._watches.pop(watch_id, None)

    def wait_event(self, events: Deque[Any], watch_id: int, timeout: Optional[float]) -> Any:
        """The next event of one watch; None when the watch or the connection ended."""
        def ready() -> bool:
            return bool(events) or watch_id not in self._watches or self._closed is not None
        if not ready():
            self._wait(ready, timeout, "a change")
        return events.popleft() if events else None

    # ---- reading -----------------------------------------------------------------------------

    def _wait(self, is_done: Callable[[], bool], timeout: Optional[float], what: str) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if is_done():
                    return
                if self._closed is not None:
                    raise self._closed
                if not self._reading:
                    self._reading = True
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StateTimeoutError("ERR_TIMEOUT", f"no {what} from the supervisor at {self.address} within {timeout} s")
                self._cond.wait(remaining)
        try:
            while not is_done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StateTimeoutError("ERR_TIMEOUT", f"no {what} from the supervisor at {self.address} within {timeout} s")
                self._read(remaining)
        finally:
            with self._cond:
                self._reading = False
                self._cond.notify_all()

    def _read(self, timeout: Optional[float]) -> None:
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(65536)
        except socket.timeout:
            return
        except OSError as error:
            data = b""
            self._last_error = self._last_error or ConnectionClosedError("ERR_ADMIN_CLOSED", f"the connection to {self.address} failed: {error}")
        if not data:
            reason = self._last_error or ConnectionClosedError("ERR_ADMIN_CLOSED", f"the supervisor at {self.address} closed the connection")
            self._shutdown(reason)
            return
        try:
            frames = self._reader.feed(data)
        except WharfError as error:
            self._shutdown(error)
            return
        with self._cond:
            for frame in frames:
                self._dispatch(frame)
            self._cond.notify_all()

    def _dispatch(self, frame: Dict[str, Any]) -> None:
        frame_id = frame.get("id")
        if "event" in frame:
            events = self._watches.get(frame_id)  # type: ignore[arg-type]
            if events is not None:
                events.append(frame["event"])
            return
        if frame_id is None:
            # Why the server is closing the connection (or a reply to a frame without a usable id).
            self._last_error = from_wire(frame.get("error"))
            return
        reply = self._pending.pop(frame_id, None)
        if reply is not None:
            reply._settle(frame)

    def _shutdown(self, reason: BaseException) -> None:
        with self._cond:
            if self._closed is None:
                self._closed = reason
                for reply in self._pending.values():
                    reply._fail(reason)
                self._pending.clear()
                self._watches.clear()
            self._cond.notify_all()
        try:
            self._sock.close()
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._shutdown(ConnectionClosedError("ERR_ADMIN_CLOSED", "the admin connection was closed"))
