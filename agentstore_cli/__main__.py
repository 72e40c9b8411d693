"""`python -m agentstore_cli`: the same as the `agentstore` console script."""

from agentstore_cli.app import main

if __name__ == "__main__":
    main()
