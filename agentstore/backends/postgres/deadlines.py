"""The client's timeout on a pool's one-statement helpers: one timer per pool, not one per
statement.

asyncpg times every statement with a timer of its own when the connection has a
`command_timeout`: a timer made, pushed on the event loop's heap (Python-level
comparisons) and cancelled, and three clock reads, per statement: about a tenth of the
client's instructions on a lone append (callgrind, `Store.append`: 321k per append with
it, 287k with no client timeout at all, 294k with these deadlines). The client's timeout
is a backstop (the server's `statement_timeout` ends a statement first, except behind
pgbouncer), so it need not be exact: here a statement notes the pool's tick when it
starts, and one timer per pool, armed while statements run, ticks every `TICK` seconds
and gives up on a statement that has run for the timeout (at most `TICK` later). Giving
up is what asyncpg's own timeout does: the statement's task is cancelled, so asyncpg
sends the server a cancel request and the pool closes the connection once it went out
(`pool._discard`); the caller gets `TimeoutError`.

Statements on a connection held with `Database.acquire()` (transactions) keep asyncpg's
own timer: the pool sees statements only in its one-statement helpers (`pool._run`), and
gives a connection its configuration back before anything else can use it.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable
from typing import Any, Final

__all__ = ["TICK", "Deadlines", "task_of", "untimed_config"]

TICK: Final = 0.5
"""Seconds between two looks at the statements running (the timeout's precision)."""


def untimed_config(conn: Any) -> Any:
    """A copy of asyncpg's configuration of `conn` without its `command_timeout`, to set
    while the pool times a statement itself; None when this asyncpg keeps its
    configuration elsewhere (asyncpg's own timer then stays: slower, as safe)."""
    config = getattr(conn, "_config", None)
    if config is None or not hasattr(config, "_replace") or config.command_timeout is None:
        return None
    return config._replace(command_timeout=None)


class Deadlines:
    """The statements of one pool that run with its timeout, and the timer that ends
    those that run too long."""

    __slots__ = ("_ticks", "expired", "handle", "running", "tick")

    def __init__(self, timeout: float) -> None:
        # A statement started between two ticks has run at least (ticks - 1) * TICK when
        # `ticks` more have passed.
        self._ticks = math.ceil(timeout / TICK) + 1
        self.tick = 0
        """Ticks so far (a statement notes it when it starts)."""
        self.running: dict[Any, tuple[asyncio.Task[Any], int]] = {}
        """The statements timed: connection -> (the task running it, its start tick). The
        pool adds and removes them itself (a method call each cost a lone append 1%)."""
        self.expired: set[Any] = set()
        """Connections whose statement ran out of time: its task was cancelled for that,
        and the pool takes that cancellation back (`Task.uncancel`) and raises
        `TimeoutError` instead."""
        self.handle: asyncio.TimerHandle | None = None
        """The timer, armed while statements run (`arm`)."""

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the timer (statements run, and it is not armed)."""
        self.handle = loop.call_later(TICK, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tick += 1
        self.handle = None
        for conn, (task, started) in list(self.running.items()):
            if self.tick - started >= self._ticks and conn not in self.expired:
                self.expired.add(conn)
                task.cancel()
        if self.running:
            self.arm(loop)

    def close(self) -> None:
        """Stop the timer (the pool is closed), unless statements still run: they are timed
        to their end (it stops once none runs)."""
        if self.handle is not None and not self.running:
            self.handle.cancel()
            self.handle = None


if sys.version_info >= (3, 12):
    task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = (
        asyncio.current_task  # in C
    )
else:  # on 3.11 `current_task` is a Python function: what it does, without its frame
    _tasks = getattr(asyncio.tasks, "_current_tasks", None)  # the loop's running task
    task_of = _tasks.get if isinstance(_tasks, dict) else asyncio.current_task
"""`task_of(loop)`: the task running on `loop` (`asyncio.current_task(loop)`)."""
