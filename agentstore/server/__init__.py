"""`agentstore serve`: gRPC and HTTP/JSON doors over one service layer, and the web UI."""

import os

# grpc's core logs to stderr on its own (a failed TLS handshake at INFO, say) unless
# GRPC_VERBOSITY says otherwise, beside our one-line error; ERROR is its documented
# default. Read as grpc loads, so this precedes any import of it in this package (the
# remote backend and bench.server_grpc import this package before grpc).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

# grpcio 1.85 does a connection's socket I/O on EventEngine threads, which hand each
# message on to the thread polling the completion queue; with these three experiments off,
# that poller does the I/O itself, as grpc did before them. Measured on 2 cores, 16 clients
# appending through AppendStream: thread switches in the server per append 5.5-6.4 ->
# 2.4-3.0 (in-memory store); with a file store, CPU per append 24% lower in the server and
# 26% lower in the clients with them off in both (interleaved runs). A GRPC_EXPERIMENTS of
# your own (even empty: grpc's defaults) is kept as it is; a process that loaded grpc
# before agentstore keeps what it loaded with. See docs/server.md.
os.environ.setdefault(
    "GRPC_EXPERIMENTS",
    "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints",
)
