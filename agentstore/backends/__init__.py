"""Storage backends: one module each, all behind `agentstore.backends.base.Backend`."""
