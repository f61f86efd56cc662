"""Finding the supervisor the way ``npm run admin`` does: its connection file, its key, its address."""
from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import NoAuthkeyError, NoSupervisorError

CONNECTION_FILE = "admin.json"
CONNECTION_FILE_VERSION = 1


def state_home(env: Mapping[str, str] = os.environ, cwd: Optional[str] = None) -> str:
    """`.wharf/` in the working folder, or ``$WHARF_HOME`` (as src/paths.ts stateHome)."""
    return os.path.abspath(os.path.join(cwd or os.getcwd(), env.get("WHARF_HOME") or ".wharf"))


def read_connection_file(home: str) -> Optional[Dict[str, Any]]:
    """The connection file's fields, None when there is none, or NoSupervisorError if it is not wharf's."""
    path = os.path.join(home, CONNECTION_FILE)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise NoSupervisorError("ERR_NO_SUPERVISOR", f"cannot read {path}: {error}") from None
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    ok = (
        isinstance(info, dict)
        and info.get("version") == CONNECTION_FILE_VERSION
        and isinstance(info.get("pid"), int) and info["pid"] > 0
        and info.get("transport") in ("unix", "tcp")
        and isinstance(info.get("address"), str) and info["address"]
        and isinstance(info.get("keyFile"), str) and info["keyFile"]
    )
    if not ok:
        raise NoSupervisorError("ERR_NO_SUPERVISOR", f"{path} is not a wharf connection file (version {CONNECTION_FILE_VERSION}): remove it and restart the supervisor.")
    return info


def is_process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except PermissionError:
        return True  # someone else's process, but alive
    except OSError:
        return False


def find_supervisor(home: str) -> Dict[str, Any]:
    info = read_connection_file(home)
    if info is None:
        raise NoSupervisorError("ERR_NO_SUPERVISOR", f"no supervisor running in {home}: start one with npm start", context={"dir": home})
    if not is_process_alive(info["pid"]):
        raise NoSupervisorError("ERR_NO_SUPERVISOR", f"no supervisor running in {home} ({CONNECTION_FILE} names pid {info['pid']}, which has exited): start one with npm start", context={"dir": home})
    return info


def read_key_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            key = file.read().strip()
    except OSError as error:
        raise NoAuthkeyError("ERR_NO_AUTHKEY", f"cannot read the key file {path}: {error}") from None
    if not key:
        raise NoAuthkeyError("ERR_NO_AUTHKEY", f"the key file {path} is empty")
    return key


def resolve_key(*, authkey: Optional[str], key_file: Optional[str], info: Optional[Dict[str, Any]], address: Optional[str], home: str, env: Mapping[str, str]) -> str:
    """Given outright, else the key file (given, or named by the connection file of the supervisor
    being reached), else WHARF_AUTHKEY. The supervisor's own key file wins over the environment:
    a supervisor that wrote one was started without WHARF_AUTHKEY, so one left in this shell could
    only be the wrong key."""
    if authkey:
        return authkey
    own = info["keyFile"] if info and info["keyFile"] != "env" and (address is None or info["address"] == address) else None
    chosen = key_file or own
    if chosen:
        return read_key_file(chosen)
    if env.get("WHARF_AUTHKEY"):
        return env["WHARF_AUTHKEY"]
    if info and info["keyFile"] == "env":
        raise NoAuthkeyError("ERR_NO_AUTHKEY", f"the supervisor in {home} takes its key from WHARF_AUTHKEY: set it to the same value here.")
    raise NoAuthkeyError("ERR_NO_AUTHKEY", "no authkey: set WHARF_AUTHKEY (or give a key file) to talk to the supervisor at that address.")


@dataclass(frozen=True)
class Target:
    transport: str  # "unix" | "tcp"
    address: str
    path: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None


_TCP = re.compile(r"^(?:tcp://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def parse_address(address: str) -> Target:
    """``/path/admin.sock``, ``unix:/path``, ``127.0.0.1:PORT`` or ``tcp://host:PORT``."""
    if address.startswith("unix:"):
        return Target("unix", address, path=os.path.abspath(address[5:]))
    match = _TCP.match(address)
    if match:
        return Target("tcp", address, host=match.group(1).strip("[]"), port=int(match.group(2)))
    if address.startswith("tcp://"):
        raise NoSupervisorError("ERR_NO_SUPERVISOR", f"{address} is not a TCP address: use tcp://127.0.0.1:PORT.")
    return Target("unix", address, path=os.path.abspath(address))


def open_socket(target: Target, timeout: float) -> socket.socket:
    try:
        if target.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(target.path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((target.host, target.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as error:
        raise NoSupervisorError("ERR_NO_SUPERVISOR", f"cannot connect to the supervisor at {target.address}: {error.strerror or error}", context={"address": target.address}) from None
    return sock


def locate(address: Optional[str], authkey: Optional[str], key_file: Optional[str], home: Optional[str], env: Mapping[str, str]) -> Tuple[Target, str]:
    """Where to connect and with which key, from the arguments, the connection file and the environment."""
    home = os.path.abspath(home) if home else state_home(env)
    if address is None:
        info = find_supervisor(home)
    else:
        try:
            info = read_connection_file(home)  # only a place to find the key
        except NoSupervisorError:
            info = None
    target = parse_address(address if address is not None else info["address"])  # type: ignore[index]
    key = resolve_key(authkey=authkey, key_file=key_file, info=info, address=address, home=home, env=env)
    return target, key
