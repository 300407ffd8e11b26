"""The pure parts of starting a plugin server (spec.md §2.1 and §2.2).

Kept apart from `serve()` so they can be tested without processes: the
launch-mode checks and handshake line, the private socket directory, and the
connect-mode `--listen` address syntax. Every function here is thread-safe and
reports a problem by raising `LaunchError` with the text to show the operator.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tempfile
from typing import Optional, Sequence

MAGIC_COOKIE_ENV = "VKHOST_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "vkhost-provider-plugin-7c1e4a0f9d2b"
PROTOCOL_VERSIONS_ENV = "VKHOST_PLUGIN_PROTOCOL_VERSIONS"
SOCKET_DIR_ENV = "VKHOST_PLUGIN_SOCKET_DIR"
HANDSHAKE_CORE_VERSION = 1
# The protocol majors this SDK speaks.
SUPPORTED_PROTOCOLS: tuple = (1,)


class LaunchError(Exception):
    """A plugin cannot start; str(error) is the message for stderr."""


def check_magic_cookie(cookie: Optional[str]) -> None:
    """Returns if `cookie` (the env value, None when unset) is the magic cookie.

    Raises LaunchError with the message spec.md §2.1 rule 1 asks for otherwise.
    """
    if cookie == MAGIC_COOKIE_VALUE:
        return
    raise LaunchError(
        "This program is a vkhost provider plugin. It is meant to be started by "
        f"vkhost (which sets {MAGIC_COOKIE_ENV}), or run as a server with "
        "--listen unix:///path/plugin.sock or --listen tcp://host:port for vkhost "
        "to connect to.")


def choose_protocol(host_versions: Optional[str], ours: Sequence[int] = SUPPORTED_PROTOCOLS) -> int:
    """The highest protocol major both the host (a comma list) and we speak.

    Raises LaunchError naming both lists when there is none or the host's list
    is malformed.
    """
    host_list = host_versions or ""

    def mismatch() -> LaunchError:
        return LaunchError(
            f'no protocol version in common: vkhost offers "{host_list}" '
            f'({PROTOCOL_VERSIONS_ENV}), this plugin speaks "{",".join(map(str, ours))}"')

    best = -1
    for item in host_list.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            version = int(item)
        except ValueError:
            raise mismatch() from None
        if version in ours:
            best = max(best, version)
    if best < 0:
        raise mismatch()
    return best


def handshake_line(protocol: int, socket_path: str) -> str:
    """The line a launched plugin prints once it serves, with its newline."""
    return f"VKHOST|{HANDSHAKE_CORE_VERSION}|{protocol}|unix|{socket_path}|grpc\n"


def make_private_socket_dir(socket_dir_env: Optional[str], tmpdir_env: Optional[str]) -> str:
    """Creates a fresh 0700 directory for the socket and returns its absolute path.

    The parent is `socket_dir_env` if non-empty, else `tmpdir_env`, else /tmp.
    Raises LaunchError when the directory cannot be created.
    """
    parent = socket_dir_env or tmpdir_env or "/tmp"
    parent = os.path.abspath(parent)
    try:
        # mkdtemp creates the directory with mode 0700.
        return tempfile.mkdtemp(prefix="vkhost-plugin-", dir=parent)
    except OSError as e:
        raise LaunchError(
            f"cannot create a private socket directory in {parent}: {e.strerror}") from None


@dataclasses.dataclass(frozen=True)
class ListenAddress:
    """A parsed --listen value: a unix socket path or a TCP host:port."""

    kind: str  # "unix" or "tcp"
    path: str = ""  # unix: absolute socket path
    host_port: str = ""  # tcp: "host:port" as gRPC takes it

    def grpc_address(self) -> str:
        """The address in gRPC syntax ("unix:/path" or "host:port")."""
        return f"unix:{self.path}" if self.kind == "unix" else self.host_port


def parse_listen_address(listen: str) -> ListenAddress:
    """Parses "unix:///abs/path" or "tcp://host:port" (host may be empty or [IPv6]).

    Raises LaunchError naming the accepted forms otherwise.
    """

    def invalid(why: str) -> LaunchError:
        return LaunchError(f'bad --listen "{listen}": {why}; use '
                           "unix:///absolute/path.sock or tcp://host:port")

    if listen.startswith("unix://"):
        path = listen[len("unix://"):]
        if not path.startswith("/"):
            raise invalid("the socket path must be absolute")
        return ListenAddress(kind="unix", path=path)
    if listen.startswith("tcp://"):
        rest = listen[len("tcp://"):]
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            raise invalid("missing port")
        if not port_text.isdigit() or int(port_text) > 65535:
            raise invalid("the port must be a number from 0 to 65535")
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            raise invalid("write IPv6 addresses in brackets")
        return ListenAddress(kind="tcp", host_port=f"{host or '0.0.0.0'}:{int(port_text)}")
    raise invalid("unknown scheme")


def remove_stale_socket(path: str) -> None:
    """Removes a socket file left at `path` by an earlier run.

    Nothing to do when `path` does not exist. Raises LaunchError when it exists
    and is not a socket (we never delete someone's file) or cannot be removed.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise LaunchError(f"cannot inspect {path}: {e.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise LaunchError(f"{path} exists and is not a socket; refusing to replace it")
    try:
        os.unlink(path)
    except OSError as e:
        raise LaunchError(f"cannot remove stale socket {path}: {e.strerror}") from None
