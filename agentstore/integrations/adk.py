"""Google ADK sessions on agentstore: every ADK event and state change is an agentstore event.

```python
from agentstore.integrations.adk import AgentStoreSessionService

runner = Runner(app_name="travel", agent=agent, session_service=AgentStoreSessionService(store))
```

Each ADK session is one agentstore session: its id is the ADK session id when that is a
valid agentstore id (ADK's generated UUIDs are), else `adk-` and 40 hex digits of a hash
of app, user and id; the labels `framework=adk`, `adk_app`, `adk_user` and `adk_session`
say whose it is. `append_event` writes, all or nothing (one `append_many`):

- `adk_event`: the ADK event itself (its JSON; the agentstore event id is the ADK event
  id, so a retried append writes nothing), from which `get_session` rebuilds the events;
- what it means in agentstore's own types, so `get_state` and `agentstore stats` count
  it: `llm_response` (model, text, tokens from `usage_metadata`) for a model turn,
  `tool_called` / `tool_result` for each function call / response (linked by its id),
  `error` for an event with an `error_code`, `state_updated` for its session-scoped
  state delta.

`app:` and `user:` state is shared by every session of an app or user, so its deltas go to
one extra agentstore session per app (`adk-app-...`) and per user (`adk-user-...`) as
`state_updated` events; `temp:` state is never stored (ADK's rule). Sessions are rebuilt
from the log on every `get_session`; a session written by two runners at once is not
detected as stale. Needs `pip install 'agentstore[adk]'`.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from agentstore.errors import InvalidInputError, SessionExistsError, SessionNotFoundError
from agentstore.helpers import state_updated
from agentstore.integrations._adk_events import ADK_EVENT, open_calls, store_events
from agentstore.integrations._appender import check_async_store
from agentstore.session import Session as StoreSession
from agentstore.session import validate_session_id
from agentstore.store import Store
from agentstore.tracking import to_json_value

try:
    from google.adk.events.event import Event
    from google.adk.sessions.base_session_service import (
        BaseSessionService,
        GetSessionConfig,
        ListSessionsResponse,
    )
    from google.adk.sessions.session import Session
    from google.adk.sessions.state import State
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "agentstore.integrations.adk needs Google ADK: pip install 'agentstore[adk]'"
    ) from exc

__all__ = ["ADK_EVENT", "AgentStoreSessionService"]

_PAGE = 100


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:40]


def _split(delta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split a state delta into its app, user and session parts (temp keys dropped)."""
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for key, value in delta.items():
        if key.startswith(State.APP_PREFIX):
            app[key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            user[key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            session[key] = value
    return app, user, session


def _check_name(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"the ADK {what} must be a non-empty string, got {value!r}")
    return value


class AgentStoreSessionService(BaseSessionService):
    """An ADK `BaseSessionService` that keeps sessions, events and state in agentstore."""

    def __init__(self, store: Store) -> None:
        """Keep ADK sessions in `store`."""
        check_async_store(store)
        self.store = store
        """The store the sessions are kept in."""

    # --- ids -----------------------------------------------------------------------------

    @staticmethod
    def store_session_id(app_name: str, user_id: str, session_id: str) -> str:
        """Return the agentstore session id of an ADK session."""
        try:
            return validate_session_id(session_id)
        except InvalidInputError:
            return f"adk-{_digest(app_name, user_id, session_id)}"

    @staticmethod
    def _app_scope(app_name: str) -> str:
        return f"adk-app-{_digest(app_name)}"

    @staticmethod
    def _user_scope(app_name: str, user_id: str) -> str:
        return f"adk-user-{_digest(app_name, user_id)}"

    # --- scoped (app: and user:) state ------------------------------------------------------

    async def _scoped_state(self, scope_id: str) -> dict[str, Any]:
        state: dict[str, Any] = {}
        with contextlib.suppress(SessionNotFoundError):
            for event in await self.store.replay(scope_id, types=["state_updated"]):
                state.update(event.payload)
        return state

    async def _update_scope(
        self, scope_id: str, name: str, delta: dict[str, Any], from_event: str = ""
    ) -> None:
        if not delta:
            return
        change = state_updated(**to_json_value(delta))
        if from_event:  # a retried ADK event writes its change once
            change.id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"adk-event:{from_event}/{scope_id}"))
        with contextlib.suppress(SessionExistsError):  # made by an earlier change
            await self.store.create_session(
                session_id=scope_id, name=name, labels={"framework": "adk-state"}
            )
        await self.store.append(scope_id, change)

    async def _merged(self, app_name: str, user_id: str, state: dict[str, Any]) -> dict[str, Any]:
        out = dict(state)
        for key, value in (await self._scoped_state(self._app_scope(app_name))).items():
            out[State.APP_PREFIX + key] = value
        user = await self._scoped_state(self._user_scope(app_name, user_id))
        for key, value in user.items():
            out[State.USER_PREFIX + key] = value
        return out

    # --- the session service contract ---------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session; raises `SessionExistsError` if `session_id` is taken."""
        _check_name("app name", app_name)
        _check_name("user id", user_id)
        adk_id = session_id.strip() if session_id and session_id.strip() else str(uuid.uuid4())
        sid = self.store_session_id(app_name, user_id, adk_id)
        app, user, own = _split(state or {})
        labels = {
            "framework": "adk",
            "adk_app": app_name,
            "adk_user": user_id,
            "adk_session": adk_id,
        }
        created = await self.store.create_session(
            session_id=sid, name=f"adk {app_name}/{user_id}", labels=labels
        )
        if own:
            await self.store.append(sid, state_updated(**to_json_value(own)))
        await self._update_scope(self._app_scope(app_name), f"adk app {app_name}", app)
        await self._update_scope(
            self._user_scope(app_name, user_id), f"adk user {app_name}/{user_id}", user
        )
        return Session(
            id=adk_id,
            app_name=app_name,
            user_id=user_id,
            state=await self._merged(app_name, user_id, to_json_value(own)),
            last_update_time=created.created_at.timestamp(),
        )

    async def _find(self, app_name: str, user_id: str, session_id: str) -> StoreSession | None:
        sid = self.store_session_id(app_name, user_id, session_id)
        try:
            found = await self.store.get_session(sid)
        except SessionNotFoundError:
            return None
        labels = found.labels
        if (labels.get("framework"), labels.get("adk_app"), labels.get("adk_user")) != (
            "adk",
            app_name,
            user_id,
        ):
            return None  # same id, someone else's session
        return found

    async def _load(
        self, found: StoreSession, *, with_events: bool
    ) -> tuple[list[Event], dict[str, Any], float]:
        types = [ADK_EVENT, "state_updated"]
        events: list[Event] = []
        state: dict[str, Any] = {}
        for stored in await self.store.replay(found.id, types=types):
            if stored.type == "state_updated":
                state.update(stored.payload)
            elif with_events:
                events.append(Event.model_validate(stored.payload))
        return events, state, found.updated_at.timestamp()

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Rebuild a session (its events, filtered by `config`, and state) from its log."""
        found = await self._find(app_name, user_id, session_id)
        if found is None:
            return None
        events, state, updated = await self._load(found, with_events=True)
        if config is not None:
            if config.num_recent_events is not None:
                n = config.num_recent_events
                events = events[-n:] if n > 0 else []
            if config.after_timestamp is not None:
                after = config.after_timestamp
                events = [e for e in events if e.timestamp >= after]
        return Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=await self._merged(app_name, user_id, state),
            events=events,
            last_update_time=updated,
        )

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """List an app's sessions (of one user, or of all), oldest update first, no events."""
        labels = {"framework": "adk", "adk_app": app_name}
        if user_id is not None:
            labels["adk_user"] = user_id
        out: list[Session] = []
        offset = 0
        while True:
            page = await self.store.list_sessions(labels=labels, limit=_PAGE, offset=offset)
            for found in page:
                owner = found.labels["adk_user"]
                _, state, updated = await self._load(found, with_events=False)
                out.append(
                    Session(
                        id=found.labels["adk_session"],
                        app_name=app_name,
                        user_id=owner,
                        state=await self._merged(app_name, owner, state),
                        last_update_time=updated,
                    )
                )
            if len(page) < _PAGE:
                break
            offset += _PAGE
        out.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=out)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session and its log (no error if there is none)."""
        found = await self._find(app_name, user_id, session_id)
        if found is not None:
            with contextlib.suppress(SessionNotFoundError):
                await self.store.delete_session(found.id)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """Return the user's `user:` state, without the prefix."""
        return await self._scoped_state(self._user_scope(app_name, user_id))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Append the event (and its meaning, see the module docstring) to the session's log."""
        if event.partial:
            return event
        found = await self._find(session.app_name, session.user_id, session.id)
        if found is None:
            raise SessionNotFoundError(session.id)
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        app, user, own = _split(event.actions.state_delta if event.actions else {})
        ended = open_calls(session.events, event) if event.error_code else []
        await self.store.append_many(found.id, store_events(event, own, ended))
        await self._update_scope(
            self._app_scope(session.app_name), f"adk app {session.app_name}", app, event.id
        )
        await self._update_scope(
            self._user_scope(session.app_name, session.user_id),
            f"adk user {session.app_name}/{session.user_id}",
            user,
            event.id,
        )
        if not any(e.id == event.id for e in session.events):
            self._commit_event_to_session(session, event)
        session.last_update_time = event.timestamp
        return event
