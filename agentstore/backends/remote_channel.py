"""The remote backend's connection: a gRPC channel to the server, plaintext or TLS, with
the options that make it reconnect quickly once a restarted server is back."""

from __future__ import annotations

from pathlib import Path

# Before grpc: importing the server package sets grpc's environment, which grpc reads as
# it loads (see agentstore/server/__init__.py).
import agentstore.server  # noqa: F401

# isort: split
import grpc

__all__ = ["CHANNEL_OPTIONS", "open_channel"]

CHANNEL_OPTIONS = [
    # Reconnect quickly once a restarted server is back (the default backs off to 2 min).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
"""The channel's options: quick reconnects, keepalives, and answers of up to 64 MiB."""


def open_channel(address: str, *, tls: bool, tls_ca: Path | None) -> grpc.aio.Channel:
    """A channel to `address` (it connects on the first call, and reconnects by itself);
    with `tls`, verified against `tls_ca` (a PEM file) or else the system's roots."""
    if tls:
        roots = tls_ca.read_bytes() if tls_ca is not None else None
        creds = grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.aio.secure_channel(address, creds, CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(address, CHANNEL_OPTIONS)
