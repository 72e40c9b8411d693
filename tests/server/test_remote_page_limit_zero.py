"""A page of no sessions through the remote backend, as on every other backend.

`Store.list_sessions_page(limit=0)` is accepted (a count >= 0) and answers an empty page
on memory, files and PostgreSQL. The remote backend sends `limit=0` to the Storage
service, whose ListSessions reads a limit of 0 as "not given" (proto3's default) and
answered its default page of 100: the caller got sessions it did not ask for. The backend
now answers a page of 0 itself.
"""

from __future__ import annotations

import agentstore
from agentstore.server.grpc_door import start_grpc_server
from agentstore.server.service import AgentStoreService


async def test_a_page_of_zero_sessions_is_empty_through_the_remote_backend() -> None:
    server_store = await agentstore.open("memory://", pricing=False)
    handle = await start_grpc_server(AgentStoreService(server_store), "127.0.0.1", 0)
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{handle.port}") as remote:
            for _ in range(3):
                await remote.create_session()
            page = await remote.list_sessions_page(limit=0)
            assert (page.sessions, page.next_cursor) == ([], None)
    finally:
        await handle.stop(grace=1)
        await server_store.close()


async def test_a_page_of_zero_sessions_is_empty_in_a_memory_store() -> None:
    async with agentstore.open("memory://", pricing=False) as store:
        for _ in range(3):
            await store.create_session()
        page = await store.list_sessions_page(limit=0)
        assert (page.sessions, page.next_cursor) == ([], None)
