"""Proxies for wharf's shared objects, in the spirit of ``multiprocessing.managers``.

Every operation is one ``state.call`` request, run by the supervisor atomically, in this
connection's name: locks and permits it holds, and its waits, end when the connection does.
Timeouts and leases are in seconds. Inside a pipeline (``client.pipeline()``) the same methods
return a :class:`~wharf_client.connection.Reply` instead of waiting for the result.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from .errors import StateTimeoutError, WharfError

if TYPE_CHECKING:
    from .client import Client

#: Stands for "absent" where JSON has no word for it (a map key to delete in compare_and_set).
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

#: A lock's lease when none is given: the store's own default (a stuck holder cannot block for ever).
DEFAULT_LOCK_LEASE = 30.0
DEFAULT_MAX_ATTEMPTS = 1000


def _ms(seconds: Optional[float], what: str) -> Optional[float]:
    if seconds is None:
        return None
    if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        raise WharfError("ERR_STATE_ARGUMENT", f"{what} must be a number of seconds >= 0 (or None); got {seconds!r}")
    return seconds * 1000.0


class _Proxy:
    kind = ""

    def __init__(self, client: "Client", name: str, init: Optional[Dict[str, int]] = None, submit: Optional[Callable[..., Any]] = None):
        self._client = client
        self.name = name
        self._init = init
        # The pipeline's submit returns a Reply; the client's waits for the result.
        self._submit = submit

    def _op(self, op: str, *args: Any) -> Any:
        params: Dict[str, Any] = {"kind": self.kind, "name": self.name, "op": op, "args": list(args)}
        if self._init:
            params["init"] = self._init
        if self._submit is not None:
            return self._submit("state.call", params)
        return self._client._state_call(params)

    @property
    def _pipelined(self) -> bool:
        return self._submit is not None

    def __repr__(self) -> str:
        return f"<wharf {self.kind} {self.name!r}>"


class Counter(_Proxy):
    """An exact integer counter shared with every worker: ``add`` is atomic in the supervisor."""

    kind = "counter"

    def add(self, n: int = 1) -> int:
        """Adds ``n`` (may be negative); returns the new total."""
        return self._op("add", n)

    def get(self) -> int:
        return self._op("get")

    def set(self, value: int) -> None:
        self._op("set", value)

    @property
    def value(self) -> int:
        return self.get()

    @value.setter
    def value(self, value: int) -> None:
        self.set(value)

    def __iadd__(self, n: int) -> "Counter":
        self.add(n)
        return self

    def __isub__(self, n: int) -> "Counter":
        self.add(-n)
        return self

    def __int__(self) -> int:
        return self.get()


class Map(_Proxy):
    """A dict of JSON values by string key. ``m[k] = v``, ``m[k]``, ``del m[k]``, ``k in m``, ``len(m)``.

    ``update`` is dict.update (all keys in one atomic batch); the read-modify-write loop is ``transform``.
    """

    kind = "map"

    def __getitem__(self, key: str) -> Any:
        if self._pipelined:
            return self._op("get", key)
        found, value = self._op("batch", [{"op": "has", "key": key}, {"op": "get", "key": key}])
        if not found:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._op("set", key, value)

    def __delitem__(self, key: str) -> None:
        deleted = self._op("delete", key)
        if not self._pipelined and not deleted:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._op("has", key)

    def __len__(self) -> int:
        return self._op("size")

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def get(self, key: str, default: Any = None) -> Any:
        if self._pipelined:
            return self._op("get", key)
        found, value = self._op("batch", [{"op": "has", "key": key}, {"op": "get", "key": key}])
        return value if found else default

    def set(self, key: str, value: Any) -> None:
        return self._op("set", key, value)

    def set_if_absent(self, key: str, value: Any) -> bool:
        """Sets ``key`` only if it has no value; True if it did."""
        return self._op("setIfAbsent", key, value)

    setdefault_atomic = set_if_absent

    def compare_and_set(self, key: str, expected: Any, new: Any = MISSING) -> bool:
        """Sets ``key`` to ``new`` (deletes it when ``new`` is MISSING) if its value equals ``expected``
        (deep JSON equality). For "only if absent" use ``set_if_absent``."""
        args = [key, expected] if new is MISSING else [key, expected, new]
        return self._op("compareAndSet", *args)

    def pop(self, key: str, *default: Any) -> Any:
        found, value, _ = self._op("batch", [{"op": "has", "key": key}, {"op": "get", "key": key}, {"op": "delete", "key": key}])
        if found:
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def keys(self) -> List[str]:
        return self._op("keys")

    def items(self) -> List[Tuple[str, Any]]:
        entries = self._op("entries")
        return entries if self._pipelined else [tuple(entry) for entry in entries]  # type: ignore[misc]

    def values(self) -> List[Any]:
        return [value for _, value in self.items()]

    def clear(self) -> None:
        self._op("clear")

    def update(self, other: Any = (), **fields: Any) -> None:
        """dict.update, applied as one atomic batch."""
        pairs = list(other.items() if hasattr(other, "items") else other) + list(fields.items())
        self._op("batch", [{"op": "set", "key": key, "value": value} for key, value in pairs])

    def batch(self, ops: List[Dict[str, Any]]) -> List[Any]:
        """Several ``{"op": get|has|set|setIfAbsent|compareAndSet|delete, "key", ...}`` as one atomic step."""
        return self._op("batch", ops)

    def transform(self, key: str, fn: Callable[[Any], Any], max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Any:
        """Read-modify-write without a lock: ``fn(current)`` (None when absent) until the
        compare-and-set wins; returns what was written. ``fn`` returning MISSING deletes the key."""
        read = [{"op": "has", "key": key}, {"op": "get", "key": key}]
        found, current = self._op("batch", read)
        for _ in range(max_attempts):
            new = fn(current if found else None)
            if new is MISSING:
                if not found or self._op("compareAndSet", key, current):
                    return MISSING
            elif not found:
                if self._op("setIfAbsent", key, new):
                    return new
            else:
                ok, _ = self._op("compareAndSet", key, current, new, True)
                if ok:
                    return new
            found, current = self._op("batch", read)
        raise WharfError("ERR_STATE_CONTENTION", f"map {self.name!r}: transform lost the compare-and-set race {max_attempts} times. Retry later, raise max_attempts, or use a lock.", retriable=True)

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.items())


class List(_Proxy):
    """An append-only shared list (``append``, indexing, slices, ``len``, iteration, ``clear``)."""

    kind = "list"

    def append(self, *values: Any) -> int:
        """Appends the values in order, atomically; returns the new length."""
        return self._op("append", *values)

    def extend(self, values: Any) -> int:
        return self._op("append", *list(values))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError("wharf lists slice with step 1 only")
            args = [index.start] + ([] if index.stop is None else [index.stop])
            return self._op("slice", *args)
        if not isinstance(index, int):
            raise TypeError(f"list indices must be integers or slices, not {type(index).__name__}")
        if self._pipelined:
            return self._op("get", index)
        items = self._op("slice", index, *(() if index == -1 else (index + 1,)))
        if not items:
            raise IndexError("wharf list index out of range")
        return items[0]

    def __len__(self) -> int:
        return self._op("length")

    def __iter__(self) -> Iterator[Any]:
        return iter(self._op("slice"))

    def to_list(self) -> List[Any]:
        return self._op("slice")

    def clear(self) -> None:
        self._op("clear")


class Value(_Proxy):
    """One JSON value. ``v.value`` reads it, ``v.value = x`` writes it (a read then a write is not
    atomic: use ``compare_and_set`` or ``transform``)."""

    kind = "value"

    def get(self) -> Any:
        return self._op("get")

    def set(self, value: Any) -> None:
        self._op("set", value)

    @property
    def value(self) -> Any:
        return self.get()

    @value.setter
    def value(self, value: Any) -> None:
        self.set(value)

    def compare_and_set(self, expected: Any, new: Any) -> bool:
        return self._op("compareAndSet", expected, new)

    def transform(self, fn: Callable[[Any], Any], max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Any:
        current = self.get()
        for _ in range(max_attempts):
            new = fn(current)
            ok, current = self._op("compareAndSet", current, new, True)
            if ok:
                return new
        raise WharfError("ERR_STATE_CONTENTION", f"value {self.name!r}: transform lost the compare-and-set race {max_attempts} times. Retry later, raise max_attempts, or use a lock.", retriable=True)


class Queue(_Proxy):
    """A bounded FIFO queue, like ``queue.Queue``: waits happen in the supervisor (timeouts in seconds;
    ``StateTimeoutError`` when one passes). An item goes to one getter at most once."""

    kind = "queue"

    def put(self, item: Any, timeout: Optional[float] = None) -> None:
        ms = _ms(timeout, "timeout")
        self._op("put", item, *(() if ms is None else (ms,)))

    def get(self, timeout: Optional[float] = None) -> Any:
        ms = _ms(timeout, "timeout")
        return self._op("get", *(() if ms is None else (ms,)))

    def put_nowait(self, item: Any) -> None:
        self.put(item, 0)

    def get_nowait(self) -> Any:
        return self.get(0)

    def qsize(self) -> int:
        return self._op("size")

    __len__ = qsize

    def empty(self) -> bool:
        return self.qsize() == 0


class Lease:
    """A held lock or semaphore permit: ``release()``, ``extend(lease)``; a context manager that
    releases on exit. ``token`` grows with every grant (a fencing token)."""

    def __init__(self, proxy: "_Leased", grant: Dict[str, Any]):
        self._proxy = proxy
        self.name = proxy.name
        self.token: int = grant["token"]
        expires = grant.get("expiresAt")
        #: When the lease ends (seconds since the epoch), None when it has no lease.
        self.expires_at: Optional[float] = None if expires is None else expires / 1000.0

    def release(self) -> bool:
        """False when the store had already taken it back (lease expired)."""
        return self._proxy._op("release", self.token)

    def extend(self, lease: Optional[float] = None) -> bool:
        """Restarts the lease from now (``lease`` seconds, default the original kind's)."""
        ms = _ms(lease, "lease")
        result = self._proxy._op("extend", self.token, *(() if ms is None else (ms,)))
        if result is False:
            return False
        self.expires_at = None if result is None else result / 1000.0
        return True

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<wharf lease {self.name!r} token={self.token}>"


class _Leased(_Proxy):
    _default_lease: Optional[float] = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._held: List[Lease] = []

    def acquire(self, timeout: Optional[float] = None, lease: Optional[float] = MISSING) -> Lease:
        """Waits (at most ``timeout`` s; 0 only tries) for the grant; raises StateTimeoutError."""
        lease_ms = _ms(self._default_lease if lease is MISSING else lease, "lease")
        timeout_ms = _ms(timeout, "timeout")
        grant = self._op("acquire", lease_ms, *(() if timeout_ms is None else (timeout_ms,)))
        if self._pipelined:
            return grant
        return Lease(self, grant)

    def __enter__(self) -> Lease:
        lease = self.acquire()
        self._held.append(lease)
        return lease

    def __exit__(self, *exc: Any) -> None:
        self._held.pop().release()


class Lock(_Leased):
    """A leased lock: ``with client.lock("x"):`` or ``with client.lock("x").acquire(timeout=2, lease=10):``.
    Taken back when released, when the lease (default 30 s) runs out, or when this connection ends."""

    kind = "lock"
    _default_lease = DEFAULT_LOCK_LEASE

    def info(self) -> Dict[str, Any]:
        return self._op("info")

    def locked(self) -> bool:
        return bool(self.info()["held"])


class Semaphore(_Leased):
    """``permits`` leases at once (no lease deadline unless ``lease`` is given)."""

    kind = "semaphore"

    def available(self) -> int:
        return self._op("available")


class Event(_Proxy):
    """Like ``threading.Event``; ``wait`` returns False when its timeout passes."""

    kind = "event"

    def set(self) -> None:
        self._op("set")

    def clear(self) -> None:
        self._op("clear")

    def is_set(self) -> bool:
        return self._op("isSet")

    def wait(self, timeout: Optional[float] = None) -> bool:
        ms = _ms(timeout, "timeout")
        try:
            self._op("wait", *(() if ms is None else (ms,)))
        except StateTimeoutError:
            return False
        return True


class Namespace(_Proxy):
    """Fields by name, as attributes (``ns.mood = "calm"``) or by ``get``/``set``/``delete``/``assign``."""

    kind = "namespace"

    def get(self, field: str) -> Any:
        return self._op("get", field)

    def set(self, field: str, value: Any) -> None:
        self._op("set", field, value)

    def delete(self, field: str) -> bool:
        return self._op("delete", field)

    def assign(self, fields: Dict[str, Any]) -> None:
        self._op("assign", fields)

    def to_dict(self) -> Dict[str, Any]:
        return self._op("toObject")

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        fields = self.to_dict()
        if field not in fields:
            raise AttributeError(f"namespace {self.name!r} has no field {field!r}")
        return fields[field]

    def __setattr__(self, field: str, value: Any) -> None:
        if field.startswith("_") or field == "name":
            object.__setattr__(self, field, value)
        else:
            self.set(field, value)

    def __delattr__(self, field: str) -> None:
        if not self.delete(field):
            raise AttributeError(field)


class Change(dict):
    """One change from ``client.watch``: ``name``, ``kind``, ``op``, and ``key``/``value`` when there
    is one, ``at`` (seconds since the epoch); ``truncated`` when the value was too large to send."""

    __getattr__ = dict.get  # type: ignore[assignment]

    @property
    def at(self) -> float:  # type: ignore[override]
        return self["at"] / 1000.0
