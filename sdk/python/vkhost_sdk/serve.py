"""serve(): runs the gRPC server for a Provider in launch or connect mode.

Launch mode (spec.md §2.1, no --listen): refuse to run without the magic
cookie, pick the highest shared protocol major, listen on a unix socket in a
fresh 0700 directory and print the handshake line
`VKHOST|1|<major>|unix|<socket path>|grpc` as the first stdout line. Connect
mode (§2.2, --listen unix:///path or tcp://host:port, optionally with mutual
TLS): just listen. Either way grpc.health.v1 is served, and the plugin stops
cleanly on SIGTERM or SIGINT, and in launch mode when stdin reaches
end-of-file (the host went away): open streams end, the socket and its
directory are removed, and serve() returns.

The stop request is noticed by the thread that called serve(), which blocks
in select(2) on the signal wake-up pipe and stdin; signal handlers therefore
need serve() to run on the main thread (pass `stop` to embed it elsewhere).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import logging
import os
import select
import signal
import sys
import threading
from typing import List, Optional, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import launch
from ._services import ProviderServices
from .launch import LaunchError
from .provider import Provider

_log = logging.getLogger("vkhost_sdk")


@dataclasses.dataclass
class ServeOptions:
    """How to serve. Empty `listen` means launch mode (started by vkhost)."""

    listen: str = ""
    # Connect mode over TCP: serve TLS with this certificate and key, and
    # require client certificates signed by `tls_client_ca_file` when set.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # Largest message accepted from the host (spec.md §9).
    max_receive_message_bytes: int = 64 << 20
    # Seconds open streams get to finish on shutdown before they are cancelled.
    shutdown_grace: float = 2.0
    # Protocol majors this plugin speaks (only 1 exists).
    protocols: Sequence[int] = launch.SUPPORTED_PROTOCOLS
    # gRPC worker threads: every open stream (watch, followed logs, exec)
    # holds one, so keep this well above the streams you expect.
    max_workers: int = 128


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the SDK's standard flags, the same as the C++ SDK's.

    --listen, --tls-cert-file, --tls-key-file, --tls-client-ca-file and
    --log-level; the underscore spellings (--tls_cert_file) are accepted too.
    """
    group = parser.add_argument_group("vkhost plugin serving")
    group.add_argument("--listen", default="",
                       help="Connect mode: serve on unix:///abs/path.sock or tcp://host:port "
                            "instead of being launched by vkhost.")
    group.add_argument("--tls-cert-file", "--tls_cert_file", dest="tls_cert_file", default="",
                       help="Connect mode: PEM certificate chain to serve TLS with.")
    group.add_argument("--tls-key-file", "--tls_key_file", dest="tls_key_file", default="",
                       help="Connect mode: PEM private key of --tls-cert-file.")
    group.add_argument("--tls-client-ca-file", "--tls_client_ca_file", dest="tls_client_ca_file",
                       default="",
                       help="Connect mode: PEM CA bundle; when set, clients must present a "
                            "certificate it signed (mutual TLS).")
    group.add_argument("--log-level", "--log_level", dest="log_level", default="info",
                       choices=["debug", "info", "warning", "error"],
                       help="Lowest level logged to stderr.")


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    """ServeOptions from flags added by add_serve_flags()."""
    return ServeOptions(listen=args.listen, tls_cert_file=args.tls_cert_file,
                        tls_key_file=args.tls_key_file,
                        tls_client_ca_file=args.tls_client_ca_file)


def configure_logging(level: str) -> None:
    """Logs to stderr (the host prefixes and keeps plugin stderr) at `level`."""
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@dataclasses.dataclass
class _Endpoint:
    launch_mode: bool
    protocol: int
    grpc_address: str
    socket_dir: str = ""  # launch mode: our private directory
    socket_path: str = ""  # unix sockets: the file to remove on exit
    credentials: Optional[grpc.ServerCredentials] = None  # None: plaintext

    def remove_files(self) -> None:
        for remove, path in ((os.unlink, self.socket_path), (os.rmdir, self.socket_dir)):
            if path:
                try:
                    remove(path)
                except OSError:
                    pass


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise LaunchError(f"cannot read {what} {path}: {e.strerror}") from None


def _credentials(options: ServeOptions) -> Optional[grpc.ServerCredentials]:
    if not options.tls_cert_file and not options.tls_key_file:
        if options.tls_client_ca_file:
            raise LaunchError("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
        return None
    if not options.tls_cert_file or not options.tls_key_file:
        raise LaunchError("TLS needs both --tls-cert-file and --tls-key-file")
    cert = _read_file(options.tls_cert_file, "TLS certificate")
    key = _read_file(options.tls_key_file, "TLS key")
    ca = _read_file(options.tls_client_ca_file, "client CA bundle") \
        if options.tls_client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=ca is not None)


def _prepare_endpoint(options: ServeOptions) -> _Endpoint:
    if not options.listen:
        launch.check_magic_cookie(os.environ.get(launch.MAGIC_COOKIE_ENV))
        protocol = launch.choose_protocol(os.environ.get(launch.PROTOCOL_VERSIONS_ENV),
                                          options.protocols)
        socket_dir = launch.make_private_socket_dir(os.environ.get(launch.SOCKET_DIR_ENV),
                                                    os.environ.get("TMPDIR"))
        socket_path = os.path.join(socket_dir, "plugin.sock")
        return _Endpoint(True, protocol, f"unix:{socket_path}", socket_dir, socket_path)
    address = launch.parse_listen_address(options.listen)
    socket_path = ""
    if address.kind == "unix":
        launch.remove_stale_socket(address.path)
        socket_path = address.path
    return _Endpoint(False, max(options.protocols), address.grpc_address(),
                     socket_path=socket_path, credentials=_credentials(options))


class _StopWaiter:
    """Turns SIGTERM/SIGINT (and, in launch mode, stdin EOF) into one wake-up.

    Installs handlers for its lifetime when on the main thread; restores them
    on close(). Used by the thread in serve() only.
    """

    def __init__(self, stop: Optional[threading.Event]) -> None:
        self._stop = stop
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._installed = threading.current_thread() is threading.main_thread()
        self._old: List = []
        if self._installed:
            self._old_wakeup = signal.set_wakeup_fd(self._write_fd)
            for signum in (signal.SIGTERM, signal.SIGINT):
                # The wake-up fd carries the signal; the handler only keeps
                # Python from dying with the default action.
                self._old.append((signum, signal.signal(signum, lambda *_: None)))

    def close(self) -> None:
        if self._installed:
            for signum, handler in self._old:
                signal.signal(signum, handler)
            signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def wait(self, watch_stdin: bool) -> str:
        """Blocks until a stop request; returns why, for the log."""
        while True:
            fds = [self._read_fd] + ([0] if watch_stdin else [])
            try:
                readable, _, _ = select.select(fds, [], [], 0.25)
            except InterruptedError:
                continue
            except OSError as e:
                if watch_stdin:
                    _log.warning("cannot watch stdin (%s); no longer watching it for vkhost's exit",
                                 e)
                    watch_stdin = False
                    continue
                raise
            if self._stop is not None and self._stop.is_set():
                return "asked to stop"
            if self._read_fd in readable:
                data = os.read(self._read_fd, 16)
                if data:
                    return f"received {signal.Signals(data[0]).name}"
            if 0 in readable:
                try:
                    chunk = os.read(0, 4096)
                except OSError as e:
                    _log.warning("cannot read stdin (%s); no longer watching it", e)
                    watch_stdin = False
                    continue
                if not chunk:
                    return "stdin closed: vkhost went away"
                # Data on stdin is not part of the protocol; ignore it.


def serve(provider: Provider, options: Optional[ServeOptions] = None,
          stop: Optional[threading.Event] = None) -> None:
    """Serves `provider` until SIGTERM/SIGINT, stdin EOF (launch mode) or `stop` is set.

    Returns after a clean shutdown. Raises LaunchError (message for stderr)
    when started outside vkhost without --listen, when no protocol version is
    shared with the host, or when the socket cannot be created or served.
    """
    options = options or ServeOptions()
    endpoint = _prepare_endpoint(options)
    waiter = _StopWaiter(stop)
    services = ProviderServices(provider)
    health_servicer = health.HealthServicer()
    message_limit = options.max_receive_message_bytes
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=options.max_workers,
                                              thread_name_prefix="vkhost-grpc"),
        options=[("grpc.max_receive_message_length", message_limit),
                 ("grpc.max_send_message_length", message_limit)])
    try:
        services.register_with(server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        cannot_bind = LaunchError(f"cannot serve gRPC on {endpoint.grpc_address} "
                                  "(address in use, bad address, or no permission)")
        try:
            if endpoint.credentials is None:
                port = server.add_insecure_port(endpoint.grpc_address)
            else:
                port = server.add_secure_port(endpoint.grpc_address, endpoint.credentials)
        except RuntimeError:
            raise cannot_bind from None
        # gRPC reports a bound port for TCP only.
        if not endpoint.socket_path and port == 0:
            raise cannot_bind
        server.start()
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        if endpoint.launch_mode:
            sys.stdout.write(launch.handshake_line(endpoint.protocol, endpoint.socket_path))
            sys.stdout.flush()
            _log.info("serving protocol v%d on %s", endpoint.protocol, endpoint.socket_path)
        else:
            _log.info("serving on %s%s", endpoint.grpc_address,
                      "" if endpoint.socket_path else f" (port {port})")
        reason = waiter.wait(watch_stdin=endpoint.launch_mode)
        _log.info("shutting down: %s", reason)
    finally:
        services.begin_shutdown()
        health_servicer.enter_graceful_shutdown()
        server.stop(options.shutdown_grace).wait()
        services.join_threads(timeout=1.0)
        waiter.close()
        endpoint.remove_files()


def serve_main(provider: Provider, argv: Optional[Sequence[str]] = None,
               parser: Optional[argparse.ArgumentParser] = None) -> int:
    """A whole main(): parses the SDK's flags, serves, returns the exit status.

    `parser` may carry the plugin's own flags (not the SDK's: they are added
    here). A plugin that needs its parsed flags before building its provider
    calls add_serve_flags(), configure_logging() and serve_with_args()
    itself instead. Returns 0 on a clean shutdown and 1 otherwise, after
    printing why on stderr.
    """
    if parser is None:
        parser = argparse.ArgumentParser(description="A vkhost provider plugin.")
    add_serve_flags(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    return serve_with_args(provider, args)


def serve_with_args(provider: Provider, args: argparse.Namespace) -> int:
    """serve() with options from parsed flags; returns the process exit status."""
    try:
        serve(provider, options_from_args(args))
    except LaunchError as e:
        print(str(e), file=sys.stderr, flush=True)
        return 1
    return 0
