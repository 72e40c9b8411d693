"""Run `agentstore serve`: one process, one `Store`, the HTTP door and the gRPC door.

Shutdown (SIGTERM or Ctrl-C) goes in this order, so nothing acknowledged is lost:
live follows are told to end, both doors stop accepting, requests in flight (appends
included) run to completion and are answered, and only then is the store closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import ipaddress
import logging
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import orjson

import agentstore
from agentstore import InvalidInputError, Store
from agentstore.errors import BackendUnavailableError
from agentstore.server.service import AgentStoreService, Limits

__all__ = [
    "ServerConfig",
    "check_forwarded_allow_ips",
    "is_loopback",
    "load_token",
    "mapped_forwarded_allow_ips",
    "serve",
]

_log = logging.getLogger("agentstore.server")


@dataclass
class ServerConfig:
    """Everything `agentstore serve` needs; `check()` refuses unsafe combinations."""

    data_dir: Path | None = None
    store_url: str | None = None
    in_memory: bool = False
    host: str = "127.0.0.1"
    http_port: int | None = 8765
    grpc_port: int | None = 50051
    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    cors_origins: list[str] = field(default_factory=list)
    json_logs: bool = False
    ui_dir: Path | None = None
    """Where the web UI's files are (default: the built-in ones, when installed)."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host names a server without a token answers besides loopback ones (behind a proxy)."""
    forwarded_allow_ips: list[str] | None = None
    """Proxies whose `X-Forwarded-For`/`-Proto` are believed (addresses, networks or `*`);
    None: nobody's, every client is the address it connects from."""
    limits: Limits = field(default_factory=Limits)
    shutdown_timeout: float = 30.0
    """Seconds to let requests in flight finish after SIGTERM before they are cancelled."""

    def check(self) -> None:
        """Raise `InvalidInputError` for a configuration the server must not start with."""
        if self.data_dir is not None and self.store_url is not None:
            raise InvalidInputError("give --data-dir or --store, not both")
        if self.store_url is not None and "://" not in self.store_url:
            raise InvalidInputError(
                f"--store takes a URL such as postgresql://host/db, not {self.store_url!r}; "
                "use --data-dir for a directory"
            )
        if not is_loopback(self.host) and not self.token:
            raise InvalidInputError(
                f"refusing to listen on {self.host} without a token: anyone who can reach "
                "it could read and write every session; pass --token-file FILE (or bind "
                "to 127.0.0.1)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInputError("TLS needs both --tls-cert and --tls-key")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise InvalidInputError(f"no such file: {path}")
        if self.tls_cert is not None and self.tls_key is not None:
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    self.tls_cert, self.tls_key
                )
            except (ssl.SSLError, OSError) as exc:
                raise InvalidInputError(f"cannot load the TLS certificate or key: {exc}") from exc
        if self.ui_dir is not None and not self.ui_dir.is_dir():
            raise InvalidInputError(f"no such directory: {self.ui_dir}")
        if self.http_port is None and self.grpc_port is None:
            raise InvalidInputError("nothing to serve: give an HTTP port or a gRPC port")
        if self.forwarded_allow_ips is not None:
            check_forwarded_allow_ips(self.forwarded_allow_ips)


def check_forwarded_allow_ips(items: list[str]) -> None:
    """Refuse what uvicorn would take silently as a name that never matches a TCP client.

    uvicorn treats an entry that is not an address or a network (a typo, `10.0.0.1/8`
    with host bits, a host name) as a literal to compare with the client's address: the
    proxy would be distrusted without a word, and every client logged as the proxy.
    """
    if items == ["*"]:
        return
    if not items:
        raise InvalidInputError("--forwarded-allow-ips needs addresses, networks or '*'")
    for item in items:
        try:
            if "/" in item:
                ipaddress.ip_network(item)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            raise InvalidInputError(
                f"--forwarded-allow-ips takes IP addresses and networks (such as 127.0.0.1 "
                f"or 10.0.0.0/8, comma-separated) or '*' alone, not {item!r}"
            ) from None


def mapped_forwarded_allow_ips(items: list[str]) -> list[str]:
    """`items` (checked), and the IPv4-mapped IPv6 form of each IPv4 address or network.

    On a dual-stack listener (`--host ::`) a proxy that connects over IPv4 has the address
    `::ffff:10.0.0.5`, which uvicorn does not match with `10.0.0.5`: the proxy would be
    distrusted without a word (every client logged, and limited, as the proxy).
    """
    mapped: list[str] = []
    for item in items:
        if item == "*":
            continue
        net = ipaddress.ip_network(item)
        if isinstance(net, ipaddress.IPv4Network):
            form = f"::ffff:{net.network_address}"
            mapped.append(form if "/" not in item else f"{form}/{96 + net.prefixlen}")
    return items + mapped


def is_loopback(host: str) -> bool:
    """Tell whether `host` is a loopback address (only this machine can connect)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(path: Path) -> str:
    """Read a token file (one line); refuse an empty or short token."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the token file {path}: {exc}") from exc
    if len(token) < 16 or any(c.isspace() for c in token):
        raise InvalidInputError(
            f"the token in {path} must be at least 16 characters with no spaces "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return token


def _open_store(config: ServerConfig) -> Store:
    if config.in_memory:
        return agentstore.open(in_memory=True)
    target: Any = config.store_url if config.store_url is not None else config.data_dir
    return agentstore.open(target if target is not None else "./agent-data")


def _setup_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:

        class _Json(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                message = record.getMessage()
                if record.name == "agentstore.server.access":
                    return message  # already a JSON object
                out = {"ts": self.formatTime(record), "level": record.levelname.lower()}
                out.update(logger=record.name, message=message)
                if record.exc_info:
                    out["exception"] = self.formatException(record.exc_info)
                return orjson.dumps(out).decode()

        handler.setFormatter(_Json())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("agentstore.server", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _start_grpc(service: AgentStoreService, config: ServerConfig) -> tuple[Any, int | None]:
    """Start part B's gRPC door if it is installed; return its handle and bound port."""
    if config.grpc_port is None:
        return None, None
    try:
        grpc_door: Any = importlib.import_module("agentstore.server.grpc_door")
    except ImportError as exc:
        if getattr(exc, "name", "") and "grpc" in str(exc.name):
            _log.warning("gRPC door not started: %s", exc)
            return None, None
        raise
    tls = (config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    handle = grpc_door.start_grpc_server(service, config.host, config.grpc_port, tls, config.token)
    if inspect.isawaitable(handle):
        handle = await handle
    return handle, getattr(handle, "port", config.grpc_port)


async def _stop_grpc(handle: Any, grace: float) -> None:
    if handle is None:
        return
    stop = getattr(handle, "stop", None)
    if stop is None:
        return
    result = stop(grace)
    if inspect.isawaitable(result):
        await result


async def serve(config: ServerConfig, *, announce: Any = print) -> None:
    """Run the server until SIGTERM/SIGINT, then shut down gracefully."""
    try:
        import uvicorn

        from agentstore.server.http_app import create_app
        from agentstore.server.http_protocol import http_protocol_class
    except ImportError as exc:
        raise ServerExtraMissingError(
            f"agentstore serve needs the server extra ({exc.name} is missing): "
            "pip install 'agentstore[server]'"
        ) from exc

    config.check()
    _setup_logging(config.json_logs)
    sock = _bind(config.host, config.http_port) if config.http_port is not None else None
    async with _open_store(config) as store:
        service = AgentStoreService(store, config.limits)
        grpc_handle, grpc_port = await _start_grpc(service, config)
        server: Any = None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: int, frame: FrameType | None = None) -> None:
            # Runs in a signal handler: hand the work to the loop. Live follows end, so
            # that the doors can drain; uvicorn stops accepting on its own.
            loop.call_soon_threadsafe(service.begin_shutdown)
            loop.call_soon_threadsafe(stop.set)

        if sock is not None:
            app = create_app(
                service,
                token=config.token,
                cors_origins=config.cors_origins,
                json_logs=config.json_logs,
                ui_dir=config.ui_dir,
                allowed_hosts=config.allowed_hosts,
            )
            protocol = http_protocol_class(config.limits.body_timeout, config.limits.max_body_bytes)
            uv_config = uvicorn.Config(
                app,
                # Always ours: uvicorn's "auto" would fall back to h11, which has neither
                # the header deadline nor the lingering close (http_protocol.py).
                http=protocol,
                log_config=None,
                access_log=False,  # ours is AccessLogMiddleware
                lifespan="off",
                timeout_graceful_shutdown=int(config.shutdown_timeout),
                ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
                ssl_keyfile=str(config.tls_key) if config.tls_key else None,
                # No limit_concurrency: the app limits requests in flight itself
                # (ConcurrencyLimitMiddleware), answering with problem JSON.
                # X-Forwarded-For/-Proto only from the proxies named: uvicorn's default
                # believed them from 127.0.0.1, so any local process could pose as any
                # client (the access log, the per-client limit on live follows).
                proxy_headers=config.forwarded_allow_ips is not None,
                forwarded_allow_ips=mapped_forwarded_allow_ips(config.forwarded_allow_ips or []),
            )
            server = _uvicorn_server(uv_config, on_signal)
        scheme = "https" if config.tls_cert else "http"
        where = {
            "http": f"{scheme}://{_show(config.host)}:{sock.getsockname()[1]}" if sock else None,
            "grpc": f"{_show(config.host)}:{grpc_port}" if grpc_handle is not None else None,
        }

        def early_signal(sig: int) -> None:
            if server is not None:
                server.handle_exit(sig, None)  # uvicorn's own handlers are not in place yet
            else:
                on_signal(sig)

        # Before the line that says where it listens: a SIGTERM right after it must stop
        # the server gracefully, not kill it with the store open.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, early_signal, sig)
        announce(orjson.dumps({"listening": where, "auth": config.token is not None}).decode())

        async def stop_grpc_when_stopping() -> None:
            # Both doors stop accepting at once; each lets its calls in flight finish.
            await service.wait_stopping()
            await _stop_grpc(grpc_handle, config.shutdown_timeout)

        try:
            async with anyio.create_task_group() as doors:
                doors.start_soon(stop_grpc_when_stopping)
                if server is not None and sock is not None:
                    await server.serve(sockets=[sock])
                else:
                    await stop.wait()
                service.begin_shutdown()
        finally:
            if sock is not None:
                sock.close()
    _log.info("agentstore serve stopped; the store is closed")


class ServerExtraMissingError(BackendUnavailableError):
    """`agentstore[server]` is not installed."""


def _show(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _uvicorn_server(config: Any, on_signal: Callable[[int, FrameType | None], None]) -> Any:
    """Return uvicorn's Server, telling the service first when a signal asks it to stop.

    (Defined here, not at module level, so that uvicorn is imported only when serving.)
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            on_signal(sig, frame)
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal once it has stopped, which would kill the
            # process before the store is closed; the caller exits normally instead.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            sigs = (signal.SIGINT, signal.SIGTERM)
            saved = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
            try:
                yield
            finally:
                for sig, handler in saved.items():
                    signal.signal(sig, handler)

    return Server(config)
