"""`agentstore serve`: share one store over HTTP/JSON and gRPC (extra `agentstore[server]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from agentstore_cli.common import UsageError, data_dir_of, global_store

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", metavar="DIR", help="Data directory to serve.", show_default=False
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", metavar="URL", help="Store URL to serve instead of a data directory."
        ),
    ] = None,
    in_memory: Annotated[
        bool,
        typer.Option("--in-memory", help="Serve an in-memory store (lost at exit; for tests)."),
    ] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; not loopback needs a token.")
    ] = "127.0.0.1",
    http_port: Annotated[
        int, typer.Option("--http-port", min=0, max=65535, help="HTTP/JSON port (0: any free).")
    ] = 8765,
    grpc_port: Annotated[
        int, typer.Option("--grpc-port", min=0, max=65535, help="gRPC port (0: any free).")
    ] = 50051,
    no_http: Annotated[bool, typer.Option("--no-http", help="Do not start the HTTP door.")] = False,
    no_grpc: Annotated[bool, typer.Option("--no-grpc", help="Do not start the gRPC door.")] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="File holding the bearer token clients must send (required off loopback).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", metavar="FILE", help="TLS certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", metavar="FILE", help="TLS private key (PEM).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            metavar="ORIGIN",
            help="Allow browser pages from this origin (repeatable); no CORS otherwise.",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Without a token, also answer requests for this host name (repeatable).",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            metavar="IPS",
            help="Believe X-Forwarded-For/-Proto from these proxies (comma-separated "
            "addresses or networks, or '*'); from nobody otherwise.",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        str, typer.Option("--log-format", metavar="text|json", help="Log lines as text or JSON.")
    ] = "text",
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1024, help="Largest request body accepted.")
    ] = 4 * 1024 * 1024,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Most events in one append.")
    ] = 1000,
    max_streams: Annotated[
        int,
        typer.Option(
            "--max-streams",
            min=1,
            help="Most live follows open at once; HTTP requests in flight: 4 times this.",
        ),
    ] = 256,
    max_streams_per_client: Annotated[
        int,
        typer.Option(
            "--max-streams-per-client", min=1, help="Most live follows from one client address."
        ),
    ] = 16,
    stream_send_timeout: Annotated[
        float,
        typer.Option(
            "--stream-send-timeout",
            min=0.1,
            metavar="SECONDS",
            help="Drop a live follower or reader that leaves what was sent unread this long.",
        ),
    ] = 30.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            min=0.1,
            metavar="SECONDS",
            help="Drop an HTTP request whose headers, or refuse (408) one whose body, "
            "stall this long.",
        ),
    ] = 30.0,
    heartbeat: Annotated[
        float,
        typer.Option(
            "--heartbeat", min=0.1, metavar="SECONDS", help="Keep-alive interval of live follows."
        ),
    ] = 15.0,
    ui_dir: Annotated[
        Path | None,
        typer.Option(
            "--ui-dir", metavar="DIR", help="Serve the web UI from DIR instead of the built-in one."
        ),
    ] = None,
) -> None:
    """Serve a store to other processes, languages and machines over HTTP/JSON and gRPC.

    \b
    Examples:
      agentstore serve --data-dir ./agent-data
      agentstore serve --host 0.0.0.0 --token-file token.txt --tls-cert c.pem --tls-key k.pem
      curl localhost:8765/v1/sessions
    """
    from agentstore.server.runner import ServerConfig, load_token
    from agentstore.server.runner import serve as run_server
    from agentstore.server.service import Limits

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json, not {log_format!r}")
    if sum((data_dir is not None, store is not None, in_memory)) > 1:
        raise UsageError("give one of --data-dir, --store and --in-memory")
    if data_dir is None and not in_memory:
        # `agentstore --store URL serve` as `serve --store URL` (the global option reads
        # $AGENTSTORE_STORE too).
        store = store or global_store(ctx)
    config = ServerConfig(
        data_dir=None if store or in_memory else data_dir_of(ctx, data_dir),
        store_url=store,
        in_memory=in_memory,
        host=host,
        http_port=None if no_http else http_port,
        grpc_port=None if no_grpc else grpc_port,
        token=load_token(token_file) if token_file is not None else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        cors_origins=list(cors_origin or []),
        allowed_hosts=list(allowed_host or []),
        forwarded_allow_ips=None
        if forwarded_allow_ips is None
        else [ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip()],
        json_logs=log_format == "json",
        limits=Limits(
            max_body_bytes=max_body_bytes,
            max_batch=max_batch,
            max_streams=max_streams,
            max_streams_per_client=max_streams_per_client,
            send_timeout=stream_send_timeout,
            body_timeout=body_timeout,
            heartbeat=heartbeat,
        ),
        ui_dir=ui_dir,
    )

    def announce(line: str) -> None:
        typer.echo(line)

    anyio.run(lambda: run_server(config, announce=announce))
