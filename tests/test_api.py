"""The public API: exports, docstrings, opening and closing, events and metadata."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

import agentstore
from agentstore import Event, EventType, InvalidEventError, Metadata, new_event


def test_all_is_sorted_and_complete() -> None:
    names = [n for n in agentstore.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in agentstore.__all__:
        assert hasattr(agentstore, name), name
    public = {
        n for n, v in vars(agentstore).items() if not n.startswith("_") and not inspect.ismodule(v)
    }
    assert public <= set(agentstore.__all__)


@pytest.mark.parametrize("name", [n for n in agentstore.__all__ if n != "__version__"])
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(agentstore, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert inspect.getdoc(obj), name
    if inspect.isclass(obj):
        for attr, value in vars(obj).items():
            if not attr.startswith("_") and inspect.isfunction(value):
                assert inspect.getdoc(value), f"{name}.{attr}"


def test_event_types() -> None:
    assert [t.value for t in EventType] == [
        "user_message",
        "plan_created",
        "tool_called",
        "tool_result",
        "llm_request",
        "llm_response",
        "state_updated",
        "error",
        "custom",
    ]
    assert EventType.TOOL_CALLED == "tool_called"


def test_new_event_and_with_metadata_chain() -> None:
    event = new_event(EventType.TOOL_CALLED, {"tool": "search_flights"})
    same = event.with_metadata(Metadata(tool_name="search_flights", duration_ms=800))
    assert same is event
    assert event.metadata.duration_ms == 800
    assert event.with_metadata(model="gpt-4o").metadata.model == "gpt-4o"
    assert event.sequence_number == 0 and event.timestamp is None
    assert len(event.id) == 36 and event.id != new_event("custom").id
    assert new_event("cache_hit").type == "cache_hit"


def test_metadata_omits_unset_fields_and_checks_values() -> None:
    assert Metadata().to_dict() == {}
    assert Metadata(tokens_in=3, extra={"k": "v"}).to_dict() == {
        "tokens_in": 3,
        "extra": {"k": "v"},
    }
    with pytest.raises(InvalidEventError):
        Metadata(tokens_in=-1)
    with pytest.raises(InvalidEventError):
        new_event("custom").with_metadata(cost_usd=float("nan"))


@pytest.mark.parametrize(
    "given",
    [
        {"tokens_in": True},  # lax validation made it 1 token
        {"cost_usd": True},  # and this one dollar, against a budget
        {"tokens_out": "5"},
        {"cost_usd": "0.1"},
        {"duration_ms": b"5"},
    ],
)
def test_metadata_numbers_must_be_numbers(given: dict[str, object]) -> None:
    with pytest.raises(InvalidEventError, match="must be a number"):
        Metadata(**given)
    meta = Metadata(tokens_in=3)
    with pytest.raises(InvalidEventError, match="must be a number"):
        meta.tokens_in = True
    assert meta.tokens_in == 3
    with pytest.raises(InvalidEventError, match="must be a number"):
        new_event("custom").with_metadata(**given)  # type: ignore[arg-type]


async def test_metadata_made_past_validation_is_checked_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    # pydantic's model_construct and model_copy(update=...) do not validate; a value they
    # let through was written as it was, and every replay of the session then failed
    # (CorruptLogError: the line's metadata cannot be read back).
    makers = {
        "model_construct": lambda: Metadata.model_construct(tokens_in="x"),  # type: ignore[arg-type]
        "model_copy": lambda: Metadata(model="m").model_copy(update={"cost_usd": True}),
        "with_metadata": lambda: new_event("custom").with_metadata(Metadata(), tokens_in=-1),
    }
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id

        async def append_made(make: Callable[[], object]) -> None:
            meta = make()
            event = meta if isinstance(meta, Event) else new_event("custom", {}, meta)  # type: ignore[arg-type]
            await store.append(sid, event)

        for make in makers.values():
            with pytest.raises(InvalidEventError):
                await append_made(make)
        assert await store.replay(sid) == []
        good = Metadata(model="m").model_copy(update={"tokens_in": 5, "note": {"any": "json"}})
        await store.append(sid, new_event("custom", {}, good))
        assert Metadata.model_construct(tokens_in=3).to_dict() == {"tokens_in": 3}
    async with agentstore.open(tmp_path) as store:
        (stored,) = await store.replay(sid)
        assert stored.metadata.to_dict() == {"model": "m", "tokens_in": 5, "note": {"any": "json"}}


def test_metadata_counts_computed_as_whole_floats_are_kept() -> None:
    assert Metadata(tokens_in=5.0, cost_usd=1).to_dict() == {"tokens_in": 5, "cost_usd": 1.0}


def test_event_json_round_trip() -> None:
    event = new_event("custom", {"a": [1, "€"]}, Metadata(model="m"))
    again = Event.from_json(event.to_json())
    assert again == event
    assert orjson.loads(event.to_json())["metadata"] == {"model": "m"}
    with pytest.raises(InvalidEventError):
        Event.from_json(b"[1, 2]")
    with pytest.raises(InvalidEventError):
        Event.from_json(b"{not json")


async def test_open_is_awaitable_and_a_context_manager(tmp_path: Path) -> None:
    store = await agentstore.open(in_memory=True)
    assert not store.closed
    await store.close()
    assert store.closed
    async with agentstore.open(tmp_path) as file_store:
        assert isinstance(file_store.backend, agentstore.Backend)
    with pytest.raises(agentstore.StoreClosedError):
        await file_store  # a closed store cannot be reopened


async def _open_and_forget() -> None:
    await agentstore.open(in_memory=True)
    gc.collect()


async def test_unclosed_store_warns() -> None:
    with pytest.warns(ResourceWarning, match="never closed"):
        await _open_and_forget()


async def test_every_error_is_an_agentstore_error() -> None:
    for name in agentstore.__all__:
        obj = getattr(agentstore, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            assert issubclass(obj, agentstore.AgentStoreError), name
