"""`agentstore serve`: gRPC and HTTP/JSON doors over one service layer, and the web UI."""

import os

# grpc's core logs to stderr on its own (a failed TLS handshake at INFO, say) unless
# GRPC_VERBOSITY says otherwise, beside our one-line error; ERROR is its documented
# default. Read when grpc first starts a channel or server, so this precedes any of ours.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
