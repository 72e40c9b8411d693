"""The JSON shapes of the HTTP API, as pydantic models: they are what `/openapi.json` says.

Sessions, events and states go over the wire with the field names of `Session`, `Event`
and `State` (the names of `agentstore export`); these models add the request bodies and
the envelopes around them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentstore import Budget, Event, Session

__all__ = [
    "AppendBatch",
    "AppendOut",
    "CreateSession",
    "EventIn",
    "ExportOut",
    "ForkRequest",
    "MAX_SEQ",
    "Health",
    "Problem",
    "SessionListOut",
    "SessionSummaryOut",
    "SkippedSessionOut",
]


class CreateSession(BaseModel):
    """Body of `POST /v1/sessions`: every field is optional."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="The session id; generated if absent.")
    name: str | None = None
    labels: dict[str, str] | None = None
    budget: Budget | None = None


class EventIn(BaseModel):
    """One event to append: the store assigns its sequence number and timestamp."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        description="Idempotency key: appending an id already stored writes nothing "
        "and returns the stored event.",
    )
    type: str = Field(description="An EventType or a lower-case name such as cache_hit.")
    payload: Any = None
    metadata: dict[str, Any] | None = None


MAX_SEQ = 2**63 - 1
"""The largest sequence number a request may name (int64, as in the gRPC messages)."""


class AppendBatch(BaseModel):
    """Body of `POST /v1/sessions/{id}/events` for a batch (all or none)."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn]
    expected_seq: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEQ,
        strict=True,  # a JSON integer: not true (1), "3" nor 3.0, as /openapi.json says
        description="Fail with 409 concurrency_conflict unless the last sequence number is this.",
    )


class AppendOut(BaseModel):
    """What an append returns: the stored events, in order."""

    events: list[Event]
    last_seq: int


class ExportOut(BaseModel):
    """`agentstore export`: a session with its events, ready for `agentstore import`."""

    session: dict[str, Any] = Field(description="The session as in its on-disk file.")
    events: list[Event]


class ForkRequest(BaseModel):
    """Body of `POST /v1/sessions/{id}/fork`."""

    model_config = ConfigDict(extra="forbid")

    at_seq: int = Field(ge=0, le=MAX_SEQ, strict=True)  # not true, "1" nor 1.0
    name: str | None = None
    labels: dict[str, str] | None = None


class SessionSummaryOut(BaseModel):
    """Per-session figures returned with `summary=1`."""

    events: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    errors: int
    open_calls: int
    last_activity: datetime | None


class SkippedSessionOut(BaseModel):
    """A session the listing passed over because it could not be read, and why."""

    session_id: str
    reason: str = Field(
        description="One line; files are named relative to the data directory, never by "
        "the server's own paths."
    )


class SessionListOut(BaseModel):
    """A page of sessions, newest first; pass `next_cursor` as `cursor` for the next one."""

    sessions: list[Session]
    next_cursor: str | None = None
    summaries: dict[str, SessionSummaryOut] | None = None
    skipped: list[SkippedSessionOut] = Field(
        default_factory=list,
        description="Sessions left out because they could not be read (a damaged session "
        "file): one bad session never hides the others. Empty when none was.",
    )


class Health(BaseModel):
    """`GET /healthz`."""

    status: str
    streams: int


class Problem(BaseModel):
    """An error, as RFC 9457 problem details, with agentstore's stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code, e.g. session_not_found.")
    instance: str | None = None
    details: dict[str, Any] | None = None
