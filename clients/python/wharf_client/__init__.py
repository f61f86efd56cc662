"""A Python client for wharf's shared state (the admin protocol, docs/protocol.md), and the message
envelope for Python services on the same Kafka topics (``wharf_client.envelope``).

Standard library only::

    import wharf_client
    with wharf_client.connect() as wharf:          # finds .wharf/admin.json, or $WHARF_HOME
        wharf.counter("hits").add(1)
        wharf.map("profile")["tony"] = {"suit": "Mark 42"}
        with wharf.lock("deploy"):
            ...
"""
from .client import Client, Pipeline, Watch, connect
from .connection import Reply
from .errors import (
    AuthenticationError, BusyError, ConnectionClosedError, KindError, NoAuthkeyError, NoSupervisorError, ProtocolError,
    StateTimeoutError, UnknownMethodError, UnknownNameError, WharfError,
)
from .proxies import MISSING, Change, Counter, Event, Lease, List, Lock, Map, Namespace, Queue, Semaphore, Value

__version__ = "0.1.0"

__all__ = [
    "connect", "Client", "Pipeline", "Watch", "Reply", "MISSING",
    "Change", "Counter", "Event", "Lease", "List", "Lock", "Map", "Namespace", "Queue", "Semaphore", "Value",
    "WharfError", "AuthenticationError", "BusyError", "ConnectionClosedError", "KindError", "NoAuthkeyError",
    "NoSupervisorError", "ProtocolError", "StateTimeoutError", "UnknownMethodError", "UnknownNameError",
]
