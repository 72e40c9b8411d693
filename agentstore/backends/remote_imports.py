"""The messages of the remote backend's `create_session_from_pages` (a Storage
CreateSessionFromPages call): a session of any size, a part at a time, never one message
over the server's limit nor held whole by the client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from agentstore.backends.base import PendingEvent
from agentstore.server import agentstore_pb2 as pb

__all__ = ["PART_BYTES", "create_parts", "nothing"]

PART_BYTES = 512 * 1024
"""Events per message, by size: well under any server's limit (4 MiB by default)."""


async def create_parts(
    session: pb.Session,
    pages: AsyncIterator[Sequence[PendingEvent]],
    encode: Callable[[PendingEvent], pb.PendingEvent],
    theirs: list[Exception],
) -> AsyncIterator[pb.StorageCreateSessionRequest]:
    """The call's messages: the session with the first events, then events.

    An error of `pages` is put in `theirs` before it goes on (grpc ends the call with a
    status of its own: the caller raises this one instead).
    """
    msg = pb.StorageCreateSessionRequest(session=session)
    try:
        async for page in pages:
            for pending in page:
                event = encode(pending)
                if msg.events and msg.ByteSize() + event.ByteSize() > PART_BYTES:
                    yield msg
                    msg = pb.StorageCreateSessionRequest()
                msg.events.append(event)
    except Exception as exc:
        theirs.append(exc)
        raise
    yield msg


async def nothing() -> AsyncIterator[pb.StorageCreateSessionRequest]:
    """A call that sends no message (asks whether the server has the call at all)."""
    return
    yield
