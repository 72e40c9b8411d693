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
from agentstore.backends.base import Backend, SessionPage, SkippedSession
from agentstore.errors import (
    AgentStoreError,
    AmbiguousSessionError,
    BackendUnavailableError,
    BudgetExceededError,
    ConcurrencyError,
    CorruptLogError,
    InvalidEventError,
    InvalidInputError,
    InvalidSessionIdError,
    ReducerError,
    SessionChangedError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    StorageUnavailableError,
    StoreClosedError,
    StoreLockedError,
    error_from_code,
)
from agentstore.events import Event, EventType, Metadata, new_event
from agentstore.helpers import (
    error,
    llm_request,
    llm_response,
    new_call_id,
    plan_created,
    state_updated,
    tool_called,
    tool_result,
    user_message,
)
from agentstore.payloads import (
    ErrorPayload,
    LlmRequest,
    LlmResponse,
    PlanCreated,
    StateUpdated,
    ToolCalled,
    ToolResult,
    UserMessage,
)
from agentstore.pricing import GenaiPricer, Price, Pricer
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
from agentstore.sync import SyncStore, open_sync
from agentstore.tracking import LlmCall, ToolCall, tool
from agentstore.verify import VerifyProblem, VerifyReport

__version__ = "0.1.0"

__all__ = [
    "AgentStoreError",
    "AmbiguousSessionError",
    "Backend",
    "BackendUnavailableError",
    "Budget",
    "BudgetExceededError",
    "BudgetRemaining",
    "ConcurrencyError",
    "CorruptLogError",
    "ErrorPayload",
    "Event",
    "EventType",
    "GenaiPricer",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidSessionIdError",
    "LlmCall",
    "LlmRequest",
    "LlmResponse",
    "Metadata",
    "OpenCall",
    "PlanCreated",
    "Price",
    "Pricer",
    "PrunedSession",
    "Reducer",
    "ReducerError",
    "Session",
    "SessionChangedError",
    "SessionExistsError",
    "SessionNotFoundError",
    "SessionPage",
    "SkippedSession",
    "State",
    "StateUpdated",
    "StorageError",
    "StorageUnavailableError",
    "Store",
    "StoreClosedError",
    "StoreLockedError",
    "SyncStore",
    "TokenUsage",
    "ToolCall",
    "ToolCalled",
    "ToolResult",
    "UserMessage",
    "VerifyProblem",
    "VerifyReport",
    "default_reducer",
    "error",
    "error_from_code",
    "llm_request",
    "llm_response",
    "new_call_id",
    "new_event",
    "open",
    "open_sync",
    "plan_created",
    "state_updated",
    "tool",
    "tool_called",
    "tool_result",
    "user_message",
    "__version__",
]
