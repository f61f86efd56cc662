"""wharf's errors as Python exceptions: one base, :class:`WharfError`, with the wire ``code``.

Match on ``code`` (or on a subclass), never on the message, which is for people. Codes without a
subclass of their own come as a plain :class:`WharfError`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional


class WharfError(Exception):
    """An error wharf reported, or one this client raises for a wharf reason."""

    def __init__(self, code: str, message: str, *, retriable: bool = False, context: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retriable = retriable
        self.context = dict(context or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class AuthenticationError(WharfError, PermissionError):
    """ERR_AUTH: the key is wrong, or the server could not prove it holds the key."""


class NoSupervisorError(WharfError, ConnectionError):
    """ERR_NO_SUPERVISOR: no connection file, a stale one, or nothing listening at the address."""


class NoAuthkeyError(WharfError):
    """ERR_NO_AUTHKEY: nowhere to take the key from."""


class ConnectionClosedError(WharfError, ConnectionError):
    """ERR_ADMIN_CLOSED (or the code the server closed with): the connection is gone."""


class ProtocolError(WharfError):
    """ERR_ADMIN_PROTOCOL: the peer does not speak wharf admin protocol v1."""


class StateTimeoutError(WharfError, TimeoutError):
    """ERR_TIMEOUT: a wait (lock, semaphore, event, queue) passed its timeout; also a reply that
    did not come within the client's call timeout."""


class UnknownNameError(WharfError, LookupError):
    """ERR_UNKNOWN_NAME: no shared object of that name."""


class KindError(WharfError, TypeError):
    """ERR_STATE_KIND: the name is taken by an object of another kind."""


class UnknownMethodError(WharfError):
    """ERR_UNKNOWN_METHOD: the supervisor does not serve this method (an older wharf?)."""


class BusyError(WharfError):
    """ERR_BUSY / ERR_TOO_MANY_CONNECTIONS: retriable, try again shortly."""


_BY_CODE = {
    "ERR_AUTH": AuthenticationError,
    "ERR_AUTH_TIMEOUT": AuthenticationError,
    "ERR_NO_SUPERVISOR": NoSupervisorError,
    "ERR_NO_AUTHKEY": NoAuthkeyError,
    "ERR_ADMIN_CLOSED": ConnectionClosedError,
    "ERR_SHUTTING_DOWN": ConnectionClosedError,
    "ERR_IDLE_TIMEOUT": ConnectionClosedError,
    "ERR_ADMIN_PROTOCOL": ProtocolError,
    "ERR_TIMEOUT": StateTimeoutError,
    "ERR_UNKNOWN_NAME": UnknownNameError,
    "ERR_STATE_KIND": KindError,
    "ERR_UNKNOWN_METHOD": UnknownMethodError,
    "ERR_BUSY": BusyError,
    "ERR_TOO_MANY_CONNECTIONS": BusyError,
}


def error_for(code: str, message: str, *, retriable: bool = False, context: Optional[Dict[str, Any]] = None) -> WharfError:
    """The exception for a wharf error code (a subclass when there is one)."""
    cls = _BY_CODE.get(code, WharfError)
    return cls(code, message, retriable=retriable, context=context)


def from_wire(error: Any, **context: Any) -> WharfError:
    """An ``{"code","message","retriable"?}`` object from a reply frame, as an exception."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return ProtocolError("ERR_ADMIN_PROTOCOL", f"the server sent an error frame without a code: {error!r}")
    return error_for(error["code"], str(error.get("message", "")), retriable=error.get("retriable") is True, context=context)
