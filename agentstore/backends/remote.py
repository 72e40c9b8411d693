"""The remote backend: a `Backend` that is a gRPC client of `agentstore serve`.

```python
async with agentstore.open("grpc://agents.internal:50051", token=token) as store:
    session = await store.create_session(name="worker-7")
```

Reducers, pricing and budgets run in this process (the caller's `Store`); the storage rules
(sequence numbers, atomic batches, `expected_seq`, idempotent ids, durability) run on the
server, over its file, memory or PostgreSQL storage, through the `agentstore.v1.Storage`
service of `agentstore/server/agentstore.proto`.

- `grpc://host:port` is plaintext; `grpcs://host:port` is TLS, verified against the
  system's roots or the PEM file in `backend_options={"tls_ca": path}` (or the
  `AGENTSTORE_TLS_CA` environment variable).
- The token is `open(..., token=...)`, else the `AGENTSTORE_TOKEN` environment variable.
- A server that cannot be reached, or a connection that drops mid-call, raises
  `StorageUnavailableError`: the call may or may not have been applied, and retrying the
  same append is safe because events carry ids. The channel reconnects by itself; the
  next call after the server is back succeeds.
- `wait_for_append` rides a server stream (`Storage.WaitForAppend`): no polling.
- Appends of all tasks ride one long-lived call (`Storage.AppendStream`), which costs
  both sides about a third of the CPU of one call per append.

Needs `pip install 'agentstore[server]'` (grpcio).

Beside this module: `remote_channel` (the channel), `remote_wire` (the contract's values as
messages and back), `remote_errors` (a call's failure as agentstore's error) and
`remote_imports` (the parts of a session created a page at a time).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

# Before grpc: importing the server package sets grpc's environment, which grpc reads as
# it loads (see agentstore/server/__init__.py).
import agentstore.server  # noqa: F401

# isort: split
import grpc

from agentstore.backends.base import (
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SessionChanges,
    SessionPage,
    SessionQuery,
    SnapshotRecord,
)
from agentstore.backends.marks import MarkRuns, add_marks
from agentstore.backends.registry import BackendOptions
from agentstore.backends.remote_channel import open_channel
from agentstore.backends.remote_errors import answer_error, rpc_error, stream_error
from agentstore.backends.remote_imports import create_parts, nothing
from agentstore.backends.remote_listing import Listings
from agentstore.backends.remote_wire import (
    pending_to_pb,
    read_request,
    result_from_pb,
    snapshot_from_pb,
    snapshot_to_pb,
    update_request,
)
from agentstore.errors import InvalidInputError, StorageError, StorageUnavailableError
from agentstore.events import Event
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_appends import AppendStreamClient
from agentstore.server.grpc_wire import (
    event_from_pb,
    parse_time,
    session_from_pb,
    session_to_pb,
)
from agentstore.session import Session

__all__ = ["RemoteBackend", "open_backend"]


def open_backend(target: str, options: BackendOptions) -> RemoteBackend:
    """Build the remote backend for a `grpc://` or `grpcs://` URL (the registry's factory)."""
    scheme, _, rest = target.partition("://")
    address = rest.strip("/")
    if not address or "/" in address:
        raise InvalidInputError(f"a server URL is {scheme}://host:port, not {target!r}")
    ca = options.extra.get("tls_ca") or os.environ.get("AGENTSTORE_TLS_CA")
    return RemoteBackend(
        address,
        tls=scheme.lower() == "grpcs",
        token=options.token or os.environ.get("AGENTSTORE_TOKEN") or None,
        tls_ca=Path(ca) if ca else None,
        timeout=float(options.extra.get("timeout", 30.0)),
        read_only=options.read_only,
    )


class RemoteBackend(Backend):
    """Storage on an `agentstore serve` server, reached over gRPC."""

    shared_across_processes = True

    def __init__(
        self,
        address: str,
        *,
        tls: bool = False,
        token: str | None = None,
        tls_ca: Path | None = None,
        timeout: float = 30.0,
        read_only: bool = False,
    ) -> None:
        self.address = address
        self.read_only = read_only
        self._tls = tls
        self._tls_ca = tls_ca
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.StorageStub | None = None
        self._appends: AppendStreamClient | None = None
        self._paged: bool | None = None  # the server takes CreateSessionFromPages
        self._listings = Listings(self._call, self.address)

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the channel (it connects on the first call, and reconnects by itself)."""
        self._channel = open_channel(self.address, tls=self._tls, tls_ca=self._tls_ca)
        stub = self._stub = pb_grpc.StorageStub(self._channel)
        # Appends ride one long-lived call (a third of the CPU of a unary call each).
        self._appends = AppendStreamClient(
            lambda: stub.AppendStream(metadata=self._metadata),
            lambda exc: stream_error(exc, self.address),
            lambda err: answer_error(err, self.address),
            self.address,
            self._timeout,
        )

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        if self._appends is not None:
            await self._appends.close()
            self._appends = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    @property
    def stub(self) -> pb_grpc.StorageStub:
        """The Storage service's stub (after `open()`)."""
        if self._stub is None:
            raise StorageUnavailableError("the remote backend is not open")
        return self._stub

    async def _call(self, name: str, request: Any) -> Any:
        method = getattr(self.stub, name)
        try:
            return await method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc, self.address) from None

    def _refuse_writes(self) -> None:
        if self.read_only:
            raise StorageError("this remote store was opened read-only")

    # --- sessions -------------------------------------------------------------------------

    async def create_session(
        self, session: Session, events: Sequence[PendingEvent] = ()
    ) -> AppendResult:
        """Create the session with its first events, atomically, on the server."""
        self._refuse_writes()
        request = pb.StorageCreateSessionRequest(
            session=session_to_pb(session), events=[pending_to_pb(p) for p in events]
        )
        return result_from_pb(await self._call("CreateSession", request))

    async def create_session_from_pages(
        self, session: Session, pages: AsyncIterator[Sequence[PendingEvent]]
    ) -> int:
        """Send the session and its events a part at a time over one call; the server
        writes them as they come and creates the session whole at the end, or not at all
        (one CreateSession of a large session passed the server's message limit)."""
        self._refuse_writes()
        if not await self._creates_from_pages():
            return await super().create_session_from_pages(session, pages)
        theirs: list[Exception] = []  # the pages' own error, raised as it is
        parts = create_parts(session_to_pb(session), pages, pending_to_pb, theirs)
        call = self.stub.CreateSessionFromPages(parts, metadata=self._metadata)
        try:
            reply = await call
        except grpc.aio.AioRpcError as exc:
            if theirs:
                raise theirs[0] from None
            raise rpc_error(exc, self.address) from None
        except asyncio.CancelledError:
            # grpc cancels the call when its messages fail: then the pages' error is the
            # answer, unless this task itself is being cancelled.
            task = asyncio.current_task()
            if theirs and (task is None or not task.cancelling()):
                raise theirs[0] from None
            raise
        return int(reply.written)

    async def _creates_from_pages(self) -> bool:
        """Whether the server takes CreateSessionFromPages: asked once, with a call that
        sends nothing (refused as such by a server that has it)."""
        if self._paged is None:
            try:
                await self.stub.CreateSessionFromPages(
                    nothing(), metadata=self._metadata, timeout=self._timeout
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.UNIMPLEMENTED,
                    grpc.StatusCode.INVALID_ARGUMENT,
                ):
                    raise rpc_error(exc, self.address) from None
                self._paged = exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            else:
                self._paged = True
        return self._paged

    async def get_session(self, session_id: str) -> Session:
        """Return the session as the server's storage has it."""
        reply = await self._call("GetSession", pb.GetSessionRequest(session_id=session_id))
        return session_from_pb(reply)

    async def update_session(self, session_id: str, changes: SessionChanges) -> Session:
        """Change the session's name, labels or budget on the server."""
        self._refuse_writes()
        request = update_request(session_id, changes)
        return session_from_pb(await self._call("UpdateSession", request))

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """Return a page of sessions (asking the server in pages of at most 1000), and the
        sessions the server's storage passed over (each once); `StorageError` if the
        server's listing does not advance (`remote_listing.py`)."""
        return await self._listings.page(query)

    async def find_session_ids(self, prefix: str, limit: int) -> list[str]:
        """Return up to `limit` ids starting with `prefix` (an exact match first)."""
        request = pb.FindSessionIdsRequest(prefix=prefix, limit=limit)
        return list((await self._call("FindSessionIds", request)).ids)

    async def delete_session(self, session_id: str, *, expected_seq: int | None = None) -> None:
        """Delete the session on the server (only at `expected_seq`, if given)."""
        self._refuse_writes()
        request = pb.DeleteSessionRequest(session_id=session_id)
        if expected_seq is not None:
            request.expected_seq = expected_seq
        await self._call("DeleteSession", request)

    async def storage_size(self, session_id: str) -> int | None:
        """Return the bytes the session takes on the server, if its storage knows."""
        reply = await self._call("StorageSize", pb.GetSessionRequest(session_id=session_id))
        return reply.bytes if reply.HasField("bytes") else None

    # --- events ---------------------------------------------------------------------------

    async def last_seq(self, session_id: str) -> int:
        """Return the session's last sequence number."""
        return (await self.head(session_id))[0]

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        """Return the session's last sequence number and creation time (the server's)."""
        reply = await self._call("LastSeq", pb.GetSessionRequest(session_id=session_id))
        born = parse_time(reply.created_at, "created_at") if reply.created_at else None
        return int(reply.last_seq), born

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Append on the server, which applies every rule of `Backend.append`."""
        self._refuse_writes()
        request = pb.StorageAppendRequest(
            session_id=session_id, events=[pending_to_pb(p) for p in batch]
        )
        if expected_seq is not None:
            request.expected_seq = expected_seq
        if self._appends is None:
            raise StorageUnavailableError("the remote backend is not open")
        return result_from_pb(await self._appends.append(request))

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        """Return the events that pass `flt`, streamed from the server in pages."""
        if flt.types is not None and not flt.types:
            return []  # an empty type set matches nothing (on the wire, empty means "any")
        events: list[Event] = []
        call = self.stub.Read(read_request(session_id, flt), metadata=self._metadata)
        try:
            async for batch in call:
                events += [event_from_pb(e) for e in batch.events]
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc, self.address) from None
        return events

    async def batch_marks(self, session_id: str) -> Mapping[int, int] | None:
        """The batch marks the server's storage keeps of the session (None: it keeps none),
        as runs (`MarkRuns`: a server sends them in order)."""
        call = self.stub.BatchMarks(
            pb.GetSessionRequest(session_id=session_id), metadata=self._metadata
        )
        marks: MarkRuns | dict[int, int] = MarkRuns()
        try:
            async for page in call:
                if not page.kept:
                    return None
                marks = add_marks(marks, page.seqs, page.ends)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None  # a server older than the call: it passes on no marks
            raise rpc_error(exc, self.address) from None
        return marks

    async def wait_for_append(self, session_id: str, after_seq: int) -> int:
        """Wait on a server stream until the session passes `after_seq`; return its last seq."""
        request = pb.WaitForAppendRequest(session_id=session_id, after_seq=after_seq)
        call = self.stub.WaitForAppend(request, metadata=self._metadata)
        try:
            reply = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc, self.address) from None
        finally:
            call.cancel()
        if reply is grpc.aio.EOF:  # the server ended the wait: it is shutting down
            raise StorageUnavailableError(
                f"the agentstore server at {self.address} ended the wait; it is going away"
            )
        return int(reply.last_seq)

    # --- snapshots ------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Store the snapshot on the server (a cache: the log stays the truth)."""
        if self.read_only:
            return
        await self._call("SaveSnapshot", snapshot_to_pb(snapshot))

    async def load_snapshot(self, session_id: str, reducer: str | None) -> SnapshotRecord | None:
        """Return the snapshot `reducer` made of the session, or None."""
        return (await self.load_session_and_snapshot(session_id, reducer))[1]

    async def load_session_and_snapshot(
        self, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        """Return the session and its snapshot in one round trip."""
        request = pb.LoadSnapshotRequest(session_id=session_id)
        if reducer is not None:
            request.reducer = reducer
        reply = await self._call("LoadSessionAndSnapshot", request)
        snap = snapshot_from_pb(reply.snapshot) if reply.HasField("snapshot") else None
        return session_from_pb(reply.session), snap
