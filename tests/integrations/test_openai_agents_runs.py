"""Review 9c: `async with AgentStoreRunHooks` marks its run in a context variable.

A block left in another task than the one it was entered in (an async fixture's setup
and teardown, a task group's child) raised ValueError from ContextVar.reset.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("agents")

import agentstore
from agentstore.integrations.openai_agents import AgentStoreRunHooks


async def test_a_block_left_in_another_task_leaves_cleanly() -> None:
    async with agentstore.open(in_memory=True) as store:
        hooks = AgentStoreRunHooks(store, "handed-over", model="m")
        await hooks.__aenter__()

        async def leave() -> None:
            await hooks.__aexit__(None, None, None)

        await asyncio.create_task(leave())  # its context is a copy of this one
        async with hooks:  # and the hooks are still usable
            pass
