"""`agentstore serve`: gRPC and HTTP/JSON doors over one service layer, and the web UI."""
