"""The conformance contract every backend passes: subclass `BackendContract`.

A backend is done when this suite passes on it. Our memory, file, PostgreSQL and remote
backends run it exactly as a third-party backend author does:

```python
# tests/test_my_backend.py
import pytest
from agentstore.testing.conformance import BackendContract
from mypackage import MyBackend

class TestMyBackend(BackendContract):
    @pytest.fixture
    def backend_factory(self, tmp_path):
        # Each call: a backend over the SAME storage (a "reopen"). Tests open several
        # stores from it, at once, to race them against each other.
        return lambda: MyBackend(tmp_path / "data")
```

Run it with pytest and pytest-asyncio in auto mode (`asyncio_mode = "auto"`). The suite
goes through `Store`, as users do, and also puts two stores on one storage, where the
races live: two writers racing `expected_seq`, retried ids, snapshots of two reducers,
and a follower woken by another store's append. To skip a test that cannot apply to a
backend, override it in the subclass with `pytest.mark.skip(reason=...)`.
"""

from __future__ import annotations

from agentstore.testing.conformance.append import AppendContract
from agentstore.testing.conformance.batches import BatchesContract
from agentstore.testing.conformance.fixtures import (
    BackendFactory,
    ContractFixtures,
    StoreFactory,
)
from agentstore.testing.conformance.isolation import IsolationContract
from agentstore.testing.conformance.lifecycle import LifecycleContract
from agentstore.testing.conformance.replay import ReplayContract
from agentstore.testing.conformance.sessions import SessionsContract
from agentstore.testing.conformance.shared import SharedStorageContract
from agentstore.testing.conformance.state import StateContract

__all__ = [
    "AppendContract",
    "BackendContract",
    "BatchesContract",
    "BackendFactory",
    "ContractFixtures",
    "IsolationContract",
    "LifecycleContract",
    "ReplayContract",
    "SessionsContract",
    "SharedStorageContract",
    "StateContract",
    "StoreFactory",
]


class BackendContract(
    ContractFixtures,
    AppendContract,
    BatchesContract,
    IsolationContract,
    LifecycleContract,
    ReplayContract,
    SessionsContract,
    SharedStorageContract,
    StateContract,
):
    """Every conformance test; subclass it and override the `backend_factory` fixture."""
