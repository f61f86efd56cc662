"""``connect()`` and the client: shared objects, watches, pipelines, and the supervisor's other methods."""
from __future__ import annotations

import os
from collections import deque
from typing import Any, Deque, Dict, Iterator, List, Mapping, Optional

from .connection import Connection, Reply
from .discovery import locate, open_socket
from .errors import ConnectionClosedError, UnknownMethodError, WharfError
from .proxies import Change, Counter, Event, List as ListProxy, Lock, Map, Namespace, Queue, Semaphore, Value
from .wire import FrameReader, handshake

STATE_CALL = "state.call"


def connect(address: Optional[str] = None, authkey: Optional[str] = None, *, home: Optional[str] = None, key_file: Optional[str] = None,
            timeout: float = 5.0, call_timeout: Optional[float] = 30.0, env: Mapping[str, str] = os.environ) -> "Client":
    """Connects to a running supervisor and authenticates.

    Found the way ``npm run admin`` finds it: without ``address``, the connection file
    ``admin.json`` in ``home`` (default ``$WHARF_HOME``, else ``.wharf`` in the working folder).
    The key: ``authkey``, else ``key_file``, else the key file the connection file names, else
    ``$WHARF_AUTHKEY``. ``address`` is a Unix socket path (``unix:/path`` too), ``127.0.0.1:PORT``
    or ``tcp://host:PORT``. ``call_timeout`` bounds each wait for a reply (None: no bound).
    """
    target, key = locate(address, authkey, key_file, home, env)
    sock = open_socket(target, timeout)
    reader = FrameReader()
    try:
        sock.settimeout(timeout)
        welcome = handshake(sock, key, reader)
    except BaseException:
        sock.close()
        raise
    return Client(Connection(sock, reader, welcome, target.address, call_timeout))


class Client:
    """One connection to a supervisor. Thread-safe; close it (or use ``with``) when done: locks it
    holds are released when it closes, as when its process dies."""

    def __init__(self, connection: Connection):
        self._connection = connection

    # ---- the object kinds -----------------------------------------------------------------------

    def counter(self, name: str) -> Counter:
        return Counter(self, name)

    def map(self, name: str) -> Map:
        return Map(self, name)

    def list(self, name: str) -> ListProxy:
        return ListProxy(self, name)

    def value(self, name: str) -> Value:
        return Value(self, name)

    def queue(self, name: str, capacity: Optional[int] = None) -> Queue:
        return Queue(self, name, None if capacity is None else {"capacity": capacity})

    def lock(self, name: str) -> Lock:
        return Lock(self, name)

    def semaphore(self, name: str, permits: int) -> Semaphore:
        return Semaphore(self, name, {"permits": permits})

    def event(self, name: str) -> Event:
        return Event(self, name)

    def namespace(self, name: str) -> Namespace:
        return Namespace(self, name)

    def watch(self, name: Optional[str] = None) -> "Watch":
        """Changes to ``name`` (or to every object) from now on, as an iterator of :class:`Change`."""
        return Watch(self._connection, name)

    def pipeline(self, window: int = 1000) -> "Pipeline":
        """Calls sent without waiting for each reply; see :class:`Pipeline`."""
        return Pipeline(self, window)

    # ---- whole objects, as the operator sees them -----------------------------------------------

    def describe(self) -> List[Dict[str, Any]]:
        return self.call("state.describe")

    def get(self, name: str) -> Any:
        """The value of any object (a dict for a map, a list for a list, …); UnknownNameError if none."""
        return self.call("state.get", {"name": name})["value"]

    def kind_of(self, name: str) -> str:
        return self.call("state.get", {"name": name})["kind"]

    def set(self, name: str, value: Any, kind: Optional[str] = None) -> None:
        """Replaces an object's contents (creating it, as ``kind``, default "value")."""
        params: Dict[str, Any] = {"name": name, "value": value}
        if kind is not None:
            params["kind"] = kind
        self.call("state.set", params)

    def delete(self, name: str) -> bool:
        return self.call("state.delete", {"name": name})["deleted"]

    def snapshot(self) -> Dict[str, Dict[str, Any]]:
        return self.call("state.snapshot")

    # ---- the supervisor ------------------------------------------------------------------------

    def ping(self) -> Dict[str, Any]:
        return self.call("ping")

    def status(self) -> Dict[str, Any]:
        return self.call("status")

    def scale(self, service: str, consumers: int) -> Dict[str, Any]:
        return self.call("scale", {"service": service, "consumers": consumers})

    def call(self, method: str, params: Any = None, timeout: Any = ...) -> Any:
        """Any method by its wire name (``dlq.list`` …), waiting for its result."""
        reply = self._connection.submit(method, params)
        return reply.result() if timeout is ... else reply.result(timeout)

    def submit(self, method: str, params: Any = None) -> Reply:
        """Any method, without waiting: ``.result()`` on the returned Reply waits."""
        return self._connection.submit(method, params)

    @property
    def methods(self) -> List[str]:
        """The methods this supervisor serves (from its welcome)."""
        return list(self._connection.methods)

    @property
    def server_pid(self) -> int:
        return self._connection.server_pid

    @property
    def address(self) -> str:
        return self._connection.address

    def supports(self, method: str) -> bool:
        return method in self._connection.methods

    def _check_state_call(self) -> None:
        if STATE_CALL not in self._connection.methods:  # an older supervisor: say so, not ERR_UNKNOWN_METHOD from afar
            raise UnknownMethodError(
                "ERR_UNKNOWN_METHOD",
                f"the supervisor at {self.address} does not serve {STATE_CALL} (operations on shared objects); it serves: "
                f"{', '.join(self._connection.methods)}. Whole objects work through client.get/set/delete/snapshot/watch.",
            )

    def _state_call(self, params: Dict[str, Any]) -> Any:
        self._check_state_call()
        return self._connection.submit(STATE_CALL, params).result()

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._connection.closed

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<wharf_client.Client {self.address} pid={self.server_pid}{' closed' if self.closed else ''}>"


class Watch:
    """An iterator of :class:`Change`; ends when closed or when the connection ends. ``get(timeout)``
    waits at most ``timeout`` seconds (StateTimeoutError)."""

    def __init__(self, connection: Connection, name: Optional[str]):
        self._connection = connection
        self.name = name
        self._reply, self._events = connection.open_watch(name)
        self._reply.result()
        self._open = True

    def get(self, timeout: Optional[float] = None) -> Change:
        event = self._connection.wait_event(self._events, self._reply.id, timeout)
        if event is None:
            raise ConnectionClosedError("ERR_ADMIN_CLOSED", "the watch ended (closed, or its connection ended)")
        return Change(event)

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        event = self._connection.wait_event(self._events, self._reply.id, None)
        if event is None:
            raise StopIteration
        return Change(event)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._connection.drop_watch(self._reply.id)
        if not self._connection.closed:
            try:
                self._connection.submit("state.unwatch", {"watch": self._reply.id}).result()
            except ConnectionClosedError:
                pass

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Pipeline:
    """Requests sent without waiting for each reply, matched to their replies by id.

    The proxies of a pipeline return :class:`Reply` objects. Requests are buffered and written
    together; at most ``window`` go unanswered at once (older replies are read before more are
    sent, so a client that does not read cannot make the supervisor drop it). On leaving the
    ``with`` block every reply is waited for, and the first error is raised::

        with client.pipeline() as p:
            totals = [p.counter("hits").add(1) for _ in range(1000)]
        print(totals[-1].result())
    """

    def __init__(self, client: Client, window: int = 1000):
        if not isinstance(window, int) or window < 1:
            raise WharfError("ERR_STATE_ARGUMENT", f"window must be a positive integer; got {window!r}")
        self._client = client
        self._connection = client._connection
        self._window = window
        self._buffer: List[bytes] = []
        self._buffered: List[Reply] = []
        self._unanswered: Deque[Reply] = deque()
        self.replies: List[Reply] = []

    def submit(self, method: str, params: Any = None) -> Reply:
        if method == STATE_CALL and STATE_CALL not in self._connection.methods:
            self._client._check_state_call()
        if len(self._unanswered) >= self._window:
            self._make_room()
        reply, frame = self._connection.prepare(method, params)
        reply._unsent = self.flush
        self._buffer.append(frame)
        self._buffered.append(reply)
        self._unanswered.append(reply)
        self.replies.append(reply)
        if len(self._buffer) >= 256:
            self.flush()
        return reply

    def _make_room(self) -> None:
        """Sends what is buffered, waits for the oldest reply, then drops every answered one from
        the front: replies come in batches, so room is made for many requests at once."""
        self.flush()
        unanswered = self._unanswered
        if not unanswered[0].done():
            unanswered[0].exception()
        while unanswered and unanswered[0].done():
            unanswered.popleft()

    def flush(self) -> None:
        """Writes the buffered requests in one system call."""
        if not self._buffer:
            return
        frames, self._buffer = self._buffer, []
        for reply in self._buffered:
            reply._unsent = None
        self._buffered = []
        self._connection.send(b"".join(frames))

    def results(self) -> List[Any]:
        """Sends what is buffered and waits for every reply; raises the first error."""
        self.flush()
        return [reply.result() for reply in self.replies]

    def counter(self, name: str) -> Counter:
        return Counter(self._client, name, submit=self.submit)

    def map(self, name: str) -> Map:
        return Map(self._client, name, submit=self.submit)

    def list(self, name: str) -> ListProxy:
        return ListProxy(self._client, name, submit=self.submit)

    def value(self, name: str) -> Value:
        return Value(self._client, name, submit=self.submit)

    def queue(self, name: str, capacity: Optional[int] = None) -> Queue:
        return Queue(self._client, name, None if capacity is None else {"capacity": capacity}, submit=self.submit)

    def event(self, name: str) -> Event:
        return Event(self._client, name, submit=self.submit)

    def namespace(self, name: str) -> Namespace:
        return Namespace(self._client, name, submit=self.submit)

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.results()
        else:
            self.flush()
