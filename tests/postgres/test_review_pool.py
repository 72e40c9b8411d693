"""Review of the pool's handling of dead connections: nothing is ever sent twice.

The store reaches the real server through a TCP relay in this test, which can cut every
connection, stop listening (the server "really gone"), or lose the server's reply to a
statement. The relay counts how many times an event's id went to the server: an append
whose connection failed must never be sent again behind the caller's back, an error must
be `StorageUnavailableError`, and the log must hold what was acknowledged, once.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.errors import StorageUnavailableError


class Relay:
    """A TCP relay to the test server that can cut connections and lose replies."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self.sent = bytearray()  # everything clients sent to the server
        self.lose_reply_to: bytes | None = None  # lose the reply to what carries these
        self._armed = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (on the same port as before, after a stop)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every connection: the server is gone."""
        assert self._server is not None
        self._server.close()
        self.cut()
        await self._server.wait_closed()

    def cut(self) -> None:
        """End every relayed connection abruptly (both sides)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer, to_server=True),
            self._pipe(up_reader, writer, to_server=False),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_server: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if to_server:
                    self.sent += data
                    if self.lose_reply_to is not None and self.lose_reply_to in data:
                        self.lose_reply_to, self._armed = None, True
                elif self._armed:  # the statement reached the server; its answer is lost
                    self._armed = False
                    self.cut()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


def _through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    hostport = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}" if user else hostport))


def _upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


async def _count(pg_url: str, sid: str) -> list[int]:
    async with agentstore.open(pg_url) as reader:
        return [e.sequence_number for e in await reader.replay(sid)]


async def test_a_lost_reply_is_reported_and_never_sent_again(pg_url: str) -> None:
    relay = Relay(_upstream(pg_url))
    await relay.start()
    backend = PostgresBackend(
        _through(pg_url, relay.port), pool_min_size=2, pool_max_size=2, notify=False
    )
    try:
        async with agentstore.open(backend, snapshot_interval=0) as store:
            sid = (await store.create_session()).id
            event = new_event("custom", {"n": 1})
            relay.lose_reply_to = event.id.encode()
            with pytest.raises(StorageUnavailableError):
                await store.append(sid, event)
            assert relay.sent.count(event.id.encode()) == 1  # sent once, not retried
            # The caller's retry of the same event is safe: stored once.
            again = await store.append(sid, event)
            assert again.sequence_number == 1 and again.id == event.id
        assert await _count(pg_url, sid) == [1]
    finally:
        await relay.stop()


async def test_a_server_gone_is_storage_unavailable_then_comes_back(pg_url: str) -> None:
    relay = Relay(_upstream(pg_url))
    await relay.start()
    backend = PostgresBackend(
        _through(pg_url, relay.port),
        pool_min_size=2,
        pool_max_size=2,
        notify=False,
        connect_timeout=2.0,
        pool_timeout=2.0,
    )
    async with agentstore.open(backend, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        first = await store.append(sid, new_event("custom", {"n": 1}))
        await relay.stop()
        lost = new_event("custom", {"n": 2})
        for _ in range(3):  # every call fails the same way, none hangs
            with pytest.raises(StorageUnavailableError):
                await store.append(sid, lost)
        assert relay.sent.count(lost.id.encode()) == 0
        await relay.start()  # the server is back, on the same address
        second = await store.append(sid, lost)
        assert (first.sequence_number, second.sequence_number) == (1, 2)
        assert relay.sent.count(lost.id.encode()) == 1
    await relay.stop()
    assert await _count(pg_url, sid) == [1, 2]


async def test_idle_connections_cut_under_the_pool_send_an_append_once(pg_url: str) -> None:
    # Every idle connection of the pool cut (a failover): the append runs on a new one,
    # sent once, and lands once.
    relay = Relay(_upstream(pg_url))
    await relay.start()
    backend = PostgresBackend(
        _through(pg_url, relay.port), pool_min_size=3, pool_max_size=3, notify=False
    )
    async with agentstore.open(backend, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        idle = list(backend.db._idle)
        relay.cut()
        # A loop step per check (no delay): each socket reports its end in one.
        while not all(c.is_closed() for c in idle):  # noqa: ASYNC110
            await asyncio.sleep(0)
        event = new_event("custom", {"n": 1})
        stored = await store.append(sid, event)
        assert stored.sequence_number == 1
        assert relay.sent.count(event.id.encode()) == 1
    await relay.stop()
    assert await _count(pg_url, sid) == [1]


def test_the_relay_url_keeps_user_database_and_options() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/db?schema=s"
    assert _through(url, 1234) == "postgresql://postgres@127.0.0.1:1234/db?schema=s"
    assert asyncpg is not None
