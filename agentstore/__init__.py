"""agentstore: an embeddable, async-first event store for AI agent state.

```python
import agentstore
from agentstore import EventType

async with agentstore.open("./agent-data") as store:
    session = await store.create_session(name="my-agent")
    await store.append(session.id, agentstore.new_event(EventType.USER_MESSAGE, {"content": "hi"}))
    state = await store.get_state(session.id)
```
"""

from agentstore._open import open
from agentstore.backends.base import Backend
from agentstore.errors import (
    AgentStoreError,
    AmbiguousSessionError,
    BudgetExceededError,
    ConcurrencyError,
    CorruptLogError,
    InvalidEventError,
    InvalidInputError,
    InvalidSessionIdError,
    ReducerError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    StoreClosedError,
    StoreLockedError,
)
from agentstore.events import Event, EventType, Metadata, new_event
from agentstore.session import PrunedSession, Session
from agentstore.state import (
    Budget,
    BudgetRemaining,
    OpenCall,
    Reducer,
    State,
    TokenUsage,
    default_reducer,
)
from agentstore.store import Store

__version__ = "0.1.0"

__all__ = [
    "AgentStoreError",
    "AmbiguousSessionError",
    "Backend",
    "Budget",
    "BudgetExceededError",
    "BudgetRemaining",
    "ConcurrencyError",
    "CorruptLogError",
    "Event",
    "EventType",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidSessionIdError",
    "Metadata",
    "OpenCall",
    "PrunedSession",
    "Reducer",
    "ReducerError",
    "Session",
    "SessionExistsError",
    "SessionNotFoundError",
    "State",
    "StorageError",
    "Store",
    "StoreClosedError",
    "StoreLockedError",
    "TokenUsage",
    "default_reducer",
    "new_event",
    "open",
    "__version__",
]
