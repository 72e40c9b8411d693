"""Appends over one long-lived gRPC call: the `AppendStream` rpc of both services.

A unary call costs the server (and the client) about three times the CPU of one message
on a call that is already open: grpcio's asyncio server creates a call, a context and a
task for each, and its poller thread wakes the event loop several times. A client that
appends often (an agent's own loop, or the remote backend's `Store`) sends its appends as
messages of one bidirectional call instead; each is answered by a message with its tag.

The rules are the unary call's (the same function appends), plus:

- Appends to one session run in the order they were read; appends to different sessions
  run concurrently (their syncs overlap), so answers may come back in another order.
- A call is sequential while its client waits for each answer before it sends the next
  append, to one session (an agent appending to its own session: the usual call). Then
  the task reading the call makes most appends itself and answers each before it reads
  on: a task per append (with its slot and ordering event) cost the server 7-10% more
  CPU per append, 16 such clients on a file store. One append in `PROBE_EVERY + 1` (the
  first among them) is made by a task while the reader reads on, as every append of a
  concurrent call is: an append read while another is being made (the client pipelines)
  or an append to another session makes the call concurrent for good. A pipelining
  client so loses its overlap for at most `PROBE_EVERY` appends (made one after another,
  about half as fast, measured with 16 in flight on one session).
- A failed append is answered with its error (status name, stable code, message,
  details), and the call goes on. A message that does not parse has no tag to answer:
  the server reads no more, answers what it read, and ends the call with
  INVALID_ARGUMENT (`invalid_input`).
- At most `Limits.max_stream_appends` appends are in flight per call: beyond that the
  server stops reading the call, so HTTP/2 flow control holds the client back. A client
  that does not read its answers is held back the same way (bounded memory, no drop: it
  sends nothing new until it reads).
- When the server begins to stop, it stops reading, answers the appends it has read, and
  ends the call (status OK): an append sent but never answered was not read, and a
  client may send it again to another server (its event ids make the retry safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson

from agentstore import AgentStoreError, InvalidInputError
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.errors import PayloadTooLargeError, describe_error
from agentstore.server.service import AgentStoreService

__all__ = ["PROBE_EVERY", "serve_append_stream", "stream_error"]

PROBE_EVERY = 16
"""Of a sequential call's appends (see the module docstring), one in this many more is
made by a task while the reader reads on: a client that pipelines is found within it."""

_log = logging.getLogger("agentstore.server")


def stream_error(exc: BaseException) -> pb.StreamError:
    """Return the error of one append as the message an `AppendStream` answers with."""
    if not isinstance(exc, AgentStoreError):
        _log.error("internal error", exc_info=exc)
    info = describe_error(exc)
    return pb.StreamError(
        status=info.grpc_status,
        code=info.code,
        message=info.message,
        details_json=orjson.dumps(info.details) if info.details else b"",
    )


async def serve_append_stream(
    service: AgentStoreService,
    context: grpc.aio.ServicerContext[Any, Any],
    append: Callable[[Any, Any], Awaitable[None]],
    reply: Callable[..., Any],
) -> None:
    """Read appends from `context` until the client or the server ends, and answer each.

    `append(request.append, out)` does one append and writes its result into `out`, the
    answer's `ok` field (filled in place: no result message to copy into the answer);
    `reply(tag=..., error=...)` builds an answer message.
    """
    limits = service.limits
    max_bytes = limits.max_body_bytes
    # asyncio's own primitives, not anyio's: grpc.aio runs on asyncio only, and these are
    # on every append's path (anyio's task and lock cost a tenth of the server's CPU here).
    slots = asyncio.Semaphore(limits.max_stream_appends)
    writing = asyncio.Lock()
    # The last append read for each session: the next one to it waits for it to finish.
    tails: dict[str, asyncio.Event] = {}
    # While the client waits for each answer and appends to one session, the reader makes
    # most appends itself (see the module docstring); else each append gets a task.
    solo: str | None = None  # the one session of a sequential call
    sequential = True
    since_probe = PROBE_EVERY  # the first append is a probe
    busy = False  # the reader is making an append (not reading): let it finish, then stop
    stop = False

    async def settle(request: Any) -> Any:
        """Make one append; return its answer (its result, or its error: the call goes on)."""
        try:
            size = request.ByteSize()
            if size > max_bytes:
                raise PayloadTooLargeError(
                    f"the append is {size} bytes; the limit is {max_bytes}: split the batch"
                )
            message = reply(tag=request.tag)
            out = message.ok
            out.SetInParent()  # an empty result is still an `ok` answer
            await append(request.append, out)
        except Exception as exc:  # this append's error is its answer; the call goes on
            message = reply(tag=request.tag, error=stream_error(exc))
        return message

    async def answer(message: Any) -> None:
        # No send timeout (unlike a live follow): a client that does not read its answers
        # is held back by HTTP/2 flow control, and the server stops reading its appends
        # once `max_stream_appends` are unanswered, so nothing grows while it waits.
        async with writing:
            await context.write(message)

    async def one(request: Any, sid: str, after: asyncio.Event | None, done: asyncio.Event) -> None:
        try:
            if after is not None:
                await after.wait()
            message = await settle(request)
        finally:
            # Out of `tails` once made, before it is answered: a client that waits for the
            # answer cannot have sent its next append yet, so `read_all` finds it made.
            done.set()
            if tails.get(sid) is done:
                del tails[sid]
        await answer(message)
        slots.release()

    refused: list[InvalidInputError] = []

    async def read_all(appends: asyncio.TaskGroup) -> None:
        nonlocal solo, sequential, since_probe, busy
        while not stop:
            if not sequential:
                await slots.acquire()
            try:
                request = await context.read()
            except InvalidInputError as exc:  # a message that does not parse (no tag)
                refused.append(exc)  # ends the call once what was read is answered
                return
            if request is grpc.aio.EOF:
                return
            sid = request.append.session_id
            if sequential:
                if solo is None:
                    solo = sid
                # Another session, or sent while a probe of this one is being made (in
                # `tails` until made): the client pipelines.
                if sid != solo or sid in tails:
                    sequential = False
                elif since_probe < PROBE_EVERY:
                    since_probe += 1
                    busy = True
                    await answer(await settle(request))
                    busy = False
                    continue
                else:
                    since_probe = 0  # a probe: read on while a task makes this append
                await slots.acquire()
            done = asyncio.Event()
            appends.create_task(one(request, sid, tails.get(sid), done))
            tails[sid] = done

    async with asyncio.TaskGroup() as appends:
        reader = appends.create_task(read_all(appends))
        stopping = appends.create_task(service.wait_stopping())
        # Whichever comes first: the client is done sending, or the server begins to stop
        # (then it reads no more; the appends it read are answered before the call ends).
        await asyncio.wait((reader, stopping), return_when=asyncio.FIRST_COMPLETED)
        stop = True
        if not busy:  # reading or waiting for a slot; else it answers its append, then stops
            reader.cancel()
        stopping.cancel()
    if refused:
        raise refused[0]
