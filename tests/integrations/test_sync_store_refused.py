"""Review 9c: every integration refuses a SyncStore when it is made, as the OpenAI Agents
and pydantic-ai ones did. The LangChain handler, the LangGraph saver and the ADK session
service took it; the handler then created the session and every append failed with a
TypeError that LangChain only logged, so a run was silently not recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore


def _integrations() -> list[type]:
    made: list[type] = []
    for module, name in [
        ("agentstore.integrations.langchain", "AgentStoreCallbackHandler"),
        ("agentstore.integrations.langgraph", "AgentStoreSaver"),
        ("agentstore.integrations.adk", "AgentStoreSessionService"),
    ]:
        imported = pytest.importorskip(module)
        made.append(getattr(imported, name))
    return made


@pytest.mark.parametrize("integration", _integrations(), ids=lambda c: c.__name__)
def test_a_sync_store_is_refused_when_the_integration_is_made(
    integration: type, tmp_path: Path
) -> None:
    with agentstore.open_sync(tmp_path / "data") as store:
        with pytest.raises(agentstore.InvalidInputError, match=r"async Store"):
            integration(store)
        assert store.list_sessions() == []
