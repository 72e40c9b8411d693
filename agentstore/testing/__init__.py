"""A pytest plugin for testing what your agent records (loaded automatically by pytest).

Fixtures:

- `agent_store`: an open in-memory `Store`, closed after the test (an async fixture: run
  your tests with pytest-asyncio or anyio's pytest plugin);
- `file_agent_store`: an open `Store` on a data directory in the test's `tmp_path`;
- `sync_agent_store`: an open in-memory `SyncStore`, for sync agents and plain tests.

And `assert_events()`, which checks the types of a session's events:

```python
from agentstore import EventType
from agentstore.testing import assert_events

async def test_agent_searches_before_answering(agent_store):
    session = await agent_store.create_session()
    await run_my_agent(agent_store, session.id, "Find flights BER -> MUC")
    await assert_events(agent_store, session.id, [
        EventType.USER_MESSAGE, EventType.TOOL_CALLED, EventType.TOOL_RESULT,
        EventType.LLM_RESPONSE,
    ])
```

The plugin is registered through the `pytest11` entry point of the `agentstore`
distribution; disable it with `pytest -p no:agentstore`.
"""

from __future__ import annotations

import sys
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast, overload

import pytest

from agentstore._open import open as _open
from agentstore.events import Event, EventType
from agentstore.store import Store
from agentstore.sync import SyncStore, open_sync

__all__ = [
    "agent_store",
    "assert_events",
    "check_events",
    "file_agent_store",
    "sync_agent_store",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(fn: _F) -> _F:
    try:  # pytest-asyncio in strict mode only runs async fixtures made with its decorator
        import pytest_asyncio
    except ImportError:  # anyio's pytest plugin (part of anyio) runs plain async fixtures
        return cast(_F, pytest.fixture(fn))
    return cast(_F, pytest_asyncio.fixture(fn))


@_async_fixture
async def agent_store() -> AsyncIterator[Store]:
    """An open in-memory `Store`, closed after the test."""
    async with _open(in_memory=True) as store:
        yield store


@_async_fixture
async def file_agent_store(tmp_path: Path) -> AsyncIterator[Store]:
    """An open `Store` on `tmp_path / "agent-data"`, closed after the test."""
    async with _open(tmp_path / "agent-data") as store:
        yield store


@pytest.fixture
def sync_agent_store() -> Iterator[SyncStore]:
    """An open in-memory `SyncStore`, closed after the test."""
    with open_sync(in_memory=True) as store:
        yield store


def check_events(
    events: Sequence[Event], expected: Sequence[EventType | str], *, exact: bool = True
) -> list[Event]:
    """Check the types of `events` against `expected`; raise `AssertionError` if they differ.

    With `exact=True` the types must be exactly `expected`, in order. With `exact=False`
    `expected` must appear in order, with any other events allowed in between.
    Returns the events, for further checks.
    """
    __tracebackhide__ = True
    actual = [str(e.type) for e in events]
    wanted = [str(t) for t in expected]
    if exact:
        if actual == wanted:
            return list(events)
        position = next(
            (i for i, (a, w) in enumerate(zip(actual, wanted, strict=False)) if a != w),
            min(len(actual), len(wanted)),
        )
        if position < len(actual) and position < len(wanted):
            detail = f"event {position + 1} is {actual[position]}, expected {wanted[position]}"
        elif position < len(wanted):
            detail = f"missing after event {position}: {', '.join(wanted[position:])}"
        else:
            detail = f"unexpected after event {position}: {', '.join(actual[position:])}"
        raise AssertionError(
            f"recorded events differ: {detail}\n  expected: {wanted}\n  actual:   {actual}"
        )
    index = 0
    for found, name in enumerate(wanted):
        while index < len(actual) and actual[index] != name:
            index += 1
        if index == len(actual):
            raise AssertionError(
                f"recorded events lack {name} (expected item {found + 1}, in order)\n"
                f"  expected (in order): {wanted}\n"
                f"  actual:              {actual}"
            )
        index += 1
    return list(events)


@overload
def assert_events(
    store: SyncStore,
    session_id: str,
    expected: Sequence[EventType | str],
    *,
    exact: bool = True,
) -> list[Event]: ...


@overload
def assert_events(
    store: Store,
    session_id: str,
    expected: Sequence[EventType | str],
    *,
    exact: bool = True,
) -> Awaitable[list[Event]]: ...


def assert_events(
    store: Store | SyncStore,
    session_id: str,
    expected: Sequence[EventType | str],
    *,
    exact: bool = True,
) -> list[Event] | Awaitable[list[Event]]:
    """Assert that a session's events have the `expected` types (see `check_events`).

    With a `Store`, await it (`await assert_events(store, sid, [...])`); with a
    `SyncStore`, call it. Returns the session's events. A check made with a `Store`
    and never awaited checks nothing, so the plugin fails the test that forgot the
    `await` (and, outside pytest, a `RuntimeWarning` says so).
    """
    __tracebackhide__ = True
    if isinstance(store, SyncStore):
        return check_events(store.get_events(session_id), expected, exact=exact)
    if not isinstance(store, Store):
        raise TypeError(f"assert_events needs a Store or SyncStore, not {type(store).__name__}")
    caller = sys._getframe(1)
    check = _PendingCheck(
        store, session_id, expected, exact, f"{caller.f_code.co_filename}:{caller.f_lineno}"
    )
    _LIVE.add(check)
    return check


class _PendingCheck:
    """The awaitable `assert_events` returns for a `Store`: it knows if it was awaited."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        expected: Sequence[EventType | str],
        exact: bool,
        where: str,
    ) -> None:
        self._args = (store, session_id, expected, exact)
        self.where = where
        self.awaited = False

    def __await__(self) -> Generator[Any, None, list[Event]]:
        self.awaited = True
        return self._check().__await__()

    async def _check(self) -> list[Event]:
        __tracebackhide__ = True
        store, session_id, expected, exact = self._args
        return check_events(await store.get_events(session_id), expected, exact=exact)

    def __del__(self) -> None:
        if self.awaited:
            return
        self.awaited = True  # said once
        if _IN_TEST[0]:
            _FORGOTTEN.append(self.where)  # the plugin fails the test
        else:
            warnings.warn(_forgotten_message([self.where]), RuntimeWarning, stacklevel=1)


_LIVE: weakref.WeakSet[_PendingCheck] = weakref.WeakSet()
_FORGOTTEN: list[str] = []
_IN_TEST = [False]


def _forgotten_message(places: Sequence[str]) -> str:
    where = ", ".join(places)
    return (
        f"assert_events(...) was never awaited at {where}, so it checked nothing: "
        "write `await assert_events(store, session_id, [...])`"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Fail a test that called `assert_events` with a `Store` and forgot to await it."""
    _FORGOTTEN.clear()
    _IN_TEST[0] = True
    try:
        result = yield
        # Dropped unawaited (the usual case: the statement's value is discarded), or
        # still held in a variable at the end of the test.
        for check in list(_LIVE):
            if not check.awaited:
                check.awaited = True
                _FORGOTTEN.append(check.where)
        if _FORGOTTEN:
            pytest.fail(_forgotten_message(_FORGOTTEN), pytrace=False)
        return result
    finally:
        _IN_TEST[0] = False
        _FORGOTTEN.clear()
