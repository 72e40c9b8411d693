"""The `Store`: the facade users call, over one backend. One room per job:

- `facade.py`: the `Store` class (lifecycle, sessions, reads, time travel, tracking);
- `validate.py`: checking and encoding what callers pass, before anything is written;
- `writes.py`: the append path (locks, budgets checked against state, listeners);
- `states.py`: reducers, the state cache and the snapshot policy;
- `budgets.py`: each session's budget, remembered;
- `lifecycle_ops.py`: fork, import and prune, orchestrated over the backend contract.
"""

from agentstore.store.facade import Store

__all__ = ["Store"]
