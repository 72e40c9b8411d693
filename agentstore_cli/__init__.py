"""The `agentstore` command line: a Typer app over the same `Store` as the library."""
