"""The client side of `Storage.AppendStream`: every append of a remote `Store` on one call.

The remote backend (`agentstore.open("grpc://...")`) sends its appends as messages of one
long-lived bidirectional call instead of one unary call each, which costs the server and
the client about a third of the CPU (see `agentstore.server.grpc_stream`). Any number of
tasks append at once: each request gets a tag, one writer task sends them in the order
they were queued, and one reader task hands each answer to the task waiting on its tag.

A caller's cancellation never reaches the call (grpcio cancels a whole call when a task is
cancelled inside `write`), so one cancelled append does not fail the others. When the call
breaks (the server went away, or is stopping), every append waiting on it fails with
`StorageUnavailableError` (retrying is safe: events carry ids), and the next append opens
a new call, so the client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import grpc

from agentstore.errors import AgentStoreError, StorageUnavailableError
from agentstore.server import agentstore_pb2 as pb

__all__ = ["AppendStreamClient"]


class _Call:
    """One open AppendStream call: its answers by tag, its queue of requests, its tasks."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.waiting: dict[int, asyncio.Future[pb.StorageAppendStreamResponse]] = {}
        self.outbox: asyncio.Queue[pb.StorageAppendStreamRequest] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.failure: AgentStoreError | None = None


class AppendStreamClient:
    """Append over `Storage.AppendStream`, opened on first use and again after a failure."""

    def __init__(
        self,
        open_call: Callable[[], Any],
        call_error: Callable[[grpc.aio.AioRpcError], AgentStoreError],
        answer_error: Callable[[pb.StreamError], AgentStoreError],
        address: str,
        answer_within: float,
    ) -> None:
        self._open_call = open_call
        self._answer_within = answer_within
        self._call_error = call_error
        self._answer_error = answer_error
        self._address = address
        self._tags = itertools.count(1)
        self._current: _Call | None = None

    async def append(self, request: pb.StorageAppendRequest) -> pb.AppendResult:
        """Send one append and return its result, or raise its error."""
        current = self._current if self._current is not None else self._start()
        tag = next(self._tags)
        answer: asyncio.Future[pb.StorageAppendStreamResponse]
        answer = asyncio.get_running_loop().create_future()
        current.waiting[tag] = answer
        current.outbox.put_nowait(pb.StorageAppendStreamRequest(tag=tag, append=request))
        try:
            async with asyncio.timeout(self._answer_within):  # no task, unlike wait_for
                reply = await answer
        except TimeoutError:
            raise StorageUnavailableError(
                f"the agentstore server at {self._address} did not answer an append within "
                f"{self._answer_within:g} s; it may or may not have been written (retrying "
                "is safe)"
            ) from None
        finally:
            current.waiting.pop(tag, None)
        if reply.WhichOneof("result") == "error":
            raise self._answer_error(reply.error)
        return reply.ok

    async def close(self) -> None:
        """End the call; appends still waiting fail with `StorageUnavailableError`."""
        current, self._current = self._current, None
        if current is not None:
            self._fail(current, StorageUnavailableError("the remote store was closed"))
            await asyncio.gather(*current.tasks, return_exceptions=True)
            # Let grpcio finish the cancelled call on this loop: left pending, its last
            # event would arrive after the loop is gone ("Event loop is closed").
            with contextlib.suppress(Exception):
                await current.call.code()

    def _start(self) -> _Call:
        current = _Call(self._open_call())
        current.tasks = [
            asyncio.create_task(self._write(current)),
            asyncio.create_task(self._read(current)),
        ]
        self._current = current
        return current

    async def _write(self, current: _Call) -> None:
        # A failed write ends the call; the reader then gets its status, which tells why
        # better than the write's own error (a refused token arrives as the status).
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            while True:
                await current.call.write(await current.outbox.get())

    async def _read(self, current: _Call) -> None:
        try:
            while (reply := await current.call.read()) is not grpc.aio.EOF:
                answer = current.waiting.pop(reply.tag, None)
                if answer is not None and not answer.done():
                    answer.set_result(reply)
            # The server ended the call (it is stopping): what it did not answer, it did
            # not read.
            self._fail(current, self._gone())
        except grpc.aio.AioRpcError as exc:
            self._fail(current, self._call_error(exc))

    def _gone(self) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"the agentstore server at {self._address} ended the append stream; it is "
            "going away (retrying is safe)"
        )

    def _fail(self, current: _Call, error: AgentStoreError) -> None:
        """Fail every append waiting on `current` and end it; the next append reconnects."""
        if current.failure is not None:
            return
        current.failure = error
        if self._current is current:
            self._current = None
        for answer in current.waiting.values():
            if not answer.done():
                answer.set_exception(error)
        current.waiting.clear()
        current.call.cancel()
        me = asyncio.current_task()
        for task in current.tasks:
            if task is not me:
                task.cancel()
