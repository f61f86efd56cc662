"""The admin protocol's frames and handshake (docs/protocol.md): length-prefixed JSON, HMAC-SHA256."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import struct
from typing import Any, Dict, List, Optional

from .errors import AuthenticationError, ProtocolError, error_for, from_wire

PROTOCOL_VERSION = 1
NONCE_BYTES = 32
#: The client's own cap on a frame from the server (the server sends at most its maxReplyBytes).
MAX_FRAME_BYTES = 64 * 1024 * 1024

_LENGTH = struct.Struct(">I")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode_frame(obj: Dict[str, Any]) -> bytes:
    """One frame: 4-byte big-endian length, then the UTF-8 JSON body."""
    body = _dumps(obj).encode("utf-8")
    return _LENGTH.pack(len(body)) + body


def proof(key: bytes, role: str, server_nonce: bytes, client_nonce: bytes) -> str:
    """HMAC-SHA256(key, "wharf-admin/1 <role>" || 0x00 || serverNonce || clientNonce), as hex."""
    message = f"wharf-admin/{PROTOCOL_VERSION} {role}\0".encode("ascii") + server_nonce + client_nonce
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class FrameReader:
    """Splits bytes from the socket into decoded frames; keeps a partial frame across reads."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> List[Dict[str, Any]]:
        buffer = self._buffer
        buffer += data
        frames = []
        at = 0
        while len(buffer) - at >= 4:
            (length,) = _LENGTH.unpack_from(buffer, at)
            if length == 0 or length > MAX_FRAME_BYTES:
                raise ProtocolError("ERR_ADMIN_PROTOCOL", f"the server sent a frame of {length} bytes: not wharf admin protocol v1")
            if len(buffer) - at - 4 < length:
                break
            body = bytes(buffer[at + 4 : at + 4 + length])
            at += 4 + length
            try:
                frame = json.loads(body.decode("utf-8"))
            except ValueError as error:
                raise ProtocolError("ERR_ADMIN_PROTOCOL", f"the server sent a frame that is not UTF-8 JSON: {error}") from None
            if not isinstance(frame, dict) or frame.get("v") != PROTOCOL_VERSION:
                raise ProtocolError("ERR_ADMIN_PROTOCOL", "the server sent a frame that is not wharf admin protocol v1")
            frames.append(frame)
        if at:
            del buffer[:at]
        return frames


def _read_frame(sock: socket.socket, reader: FrameReader, pending: List[Dict[str, Any]]) -> Dict[str, Any]:
    while not pending:
        data = sock.recv(65536)
        if not data:
            raise AuthenticationError("ERR_AUTH", "the supervisor closed the connection during the handshake: check the key")
        pending.extend(reader.feed(data))
    return pending.pop(0)


def handshake(sock: socket.socket, key: str, reader: FrameReader) -> Dict[str, Any]:
    """challenge → auth → welcome, checking the server's proof. Returns the welcome frame.

    Frames that arrived after the welcome stay in ``reader``'s care only if none did: the server
    sends nothing unasked after the welcome, so none can.
    """
    pending: List[Dict[str, Any]] = []
    challenge = _read_frame(sock, reader, pending)
    if challenge.get("ok") is False:
        raise from_wire(challenge.get("error"))
    if challenge.get("type") != "challenge" or not isinstance(challenge.get("nonce"), str):
        raise ProtocolError("ERR_ADMIN_PROTOCOL", "the server did not start with a challenge: is this a wharf admin socket?")
    versions = challenge.get("versions")
    if not isinstance(versions, list) or PROTOCOL_VERSION not in versions:
        raise ProtocolError("ERR_ADMIN_PROTOCOL", f"the server speaks protocol versions {versions!r}; this client speaks {PROTOCOL_VERSION}")
    try:
        server_nonce = bytes.fromhex(challenge["nonce"])
    except ValueError:
        raise ProtocolError("ERR_ADMIN_PROTOCOL", "the challenge's nonce is not hex") from None
    client_nonce = secrets.token_bytes(NONCE_BYTES)
    key_bytes = key.encode("utf-8")
    sock.sendall(encode_frame({"v": PROTOCOL_VERSION, "type": "auth", "nonce": client_nonce.hex(), "proof": proof(key_bytes, "client", server_nonce, client_nonce)}))
    welcome = _read_frame(sock, reader, pending)
    if welcome.get("ok") is False:
        raise from_wire(welcome.get("error"))
    expected = proof(key_bytes, "server", server_nonce, client_nonce)
    if welcome.get("type") != "welcome" or not isinstance(welcome.get("proof"), str) or not hmac.compare_digest(welcome["proof"], expected):
        raise error_for("ERR_AUTH", "the server could not prove it holds the key: it is not the supervisor you meant to reach")
    if pending:
        raise ProtocolError("ERR_ADMIN_PROTOCOL", "the server sent frames before any request")
    return welcome


def request_frame(request_id: int, method: str, params: Optional[Any]) -> bytes:
    frame: Dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id, "method": method}
    if params is not None:
        frame["params"] = params
    return encode_frame(frame)
