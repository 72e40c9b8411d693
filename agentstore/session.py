"""Sessions: one agent run, with its own append-only event log."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentstore.errors import InvalidSessionIdError
from agentstore.eventjson import off_calendar
from agentstore.state import Budget

__all__ = ["PrunedSession", "Session", "validate_session_id"]

MAX_SESSION_ID_LENGTH = 128
# Session ids name files, so only characters that are safe in a file name on every
# platform are allowed: no separators, no NUL, no look-alike unicode slashes.
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_session_id(session_id: object) -> str:
    """Return `session_id` if it is a valid session id, else raise `InvalidSessionIdError`.

    A valid id is 1 to 128 characters of ASCII letters, digits, `_`, `-` and `.`, starts
    with a letter or digit and holds no `..` (ids name files in the data directory).
    """
    if not isinstance(session_id, str):
        kind = type(session_id).__name__
        got = "a Session: pass session.id" if kind == "Session" else kind
        raise InvalidSessionIdError(f"expected a session id (str), got {got}")
    if (
        0 < len(session_id) <= MAX_SESSION_ID_LENGTH
        and _SESSION_ID.fullmatch(session_id)
        and ".." not in session_id
    ):
        return session_id
    shown = repr(session_id) if len(repr(session_id)) <= 80 else repr(session_id)[:77] + "..."
    raise InvalidSessionIdError(
        f"invalid session id {shown}: use 1-{MAX_SESSION_ID_LENGTH} characters of "
        "A-Z a-z 0-9 _ - . starting with a letter or digit, without '..'"
    )


class Session(BaseModel):
    """An agent session (one run): its id, name, labels and the size of its log.

    `event_count` and `updated_at` are derived from the log when the session is read.
    """

    model_config = ConfigDict(extra="allow")

    id: str
    """Unique id; also the file name of its log."""
    name: str | None = None
    """A human-readable name (not unique)."""
    created_at: datetime
    """When the session was created (UTC)."""
    updated_at: datetime
    """When its last event was appended, or `created_at` for an empty session."""
    event_count: int = 0
    """How many events its log holds (its last sequence number)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form string labels, e.g. `{"env": "prod"}`; `list_sessions` filters on them."""
    parent_id: str | None = None
    """For a fork: the session it was forked from."""
    forked_at: int | None = None
    """For a fork: the sequence number of the source it was forked at."""
    budget: Budget | None = None
    """Spending limits checked before each `llm_request` (see `Budget`)."""

    @field_validator("created_at", "updated_at")
    @classmethod
    def _has_a_utc_form(cls, value: datetime) -> datetime:
        # A time that leaves the years 1-9999 once in UTC cannot be stored or listed: a
        # session file holding one is refused when read (a listing then passes over it,
        # with a warning) instead of failing every listing.
        why = off_calendar(value)
        if why is not None:
            raise ValueError(why)
        return value

    @model_validator(mode="before")
    @classmethod
    def _updated_defaults_to_created(cls, data: Any) -> Any:
        # updated_at is derived from the log anyway; a session file without it is fine.
        if isinstance(data, dict) and data.get("updated_at") is None and "created_at" in data:
            data = {**data, "updated_at": data["created_at"]}
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the session as the JSON object of its on-disk file."""
        out = self.model_dump(mode="json", exclude_none=True)
        if not out.get("labels"):
            out.pop("labels", None)
        return out


class PrunedSession(BaseModel):
    """A session that `Store.prune` deleted (or, with `dry_run`, would delete)."""

    session: Session
    """The session as it was before deletion."""
    bytes: int
    """How many bytes of storage it took."""
