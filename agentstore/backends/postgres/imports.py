"""A new session with its events given a page at a time, in one transaction.

`Backend.create_session_from_pages` for PostgreSQL (fork, import and `agentstore copy`):
the first page goes in with the session row (the `CREATE` statement of a one-statement
`create_session`), each later page is one more statement in the same transaction, and
the session's head is set at the end. The whole session appears at the commit or not at
all, and only a page of it is held at a time (a 200,000-event session copied from a data
directory took 1.4 GB when gathered first). Ids repeated across pages are planned as
within one (`plan_append`): the rules of `create_session` with every event at once; the
ids written so far are held as hashes (`SeenIds`), a hit looked up in the rows; an
import's pages (`CheckedPage`) need neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from agentstore.backends.base import PendingEvent, plan_append
from agentstore.backends.idset import CheckedPage, SeenIds
from agentstore.backends.postgres import append_sql as sql_text
from agentstore.backends.postgres._driver import translated
from agentstore.backends.postgres.jsontext import refuse_nul
from agentstore.backends.postgres.pool import Database
from agentstore.backends.postgres.rows import session_values
from agentstore.backends.types import check_batch_marks
from agentstore.errors import InvalidInputError, SessionExistsError
from agentstore.session import Session

__all__ = ["Importer"]


class _PageError(Exception):
    """An error the pages raised, carried out of `translated` as it is."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _next(pages: AsyncIterator[Sequence[PendingEvent]]) -> Sequence[PendingEvent] | None:
    """The next page (None: no more), an error of the pages' own wrapped in `_PageError`."""
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return None
    except Exception as exc:
        raise _PageError(exc) from exc


class Importer:
    """The statements of one schema that create a session page by page."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        self._create = sql_text.CREATE.format(s=s)
        self._page = sql_text.IMPORT_PAGE.format(s=s)
        self._head = f"UPDATE {s}.sessions SET last_seq = $2, last_ts = $3 WHERE id = $1"
        self._written = (
            f"SELECT id, seq FROM {s}.events WHERE session_id = $1 AND id = ANY($2::text[])"
        )

    async def create(
        self,
        pool: Database,
        session: Session,
        pages: AsyncIterator[Sequence[PendingEvent]],
        now: datetime,
    ) -> int:
        """Create `session` with the events of `pages`; return how many were written.

        Raises `SessionExistsError` if the id is taken, and whatever `pages` raises; then
        nothing is created (the transaction is rolled back).
        """
        values = session_values(session)
        # The ids written, as hashes (not a dict of the strings): a page's id that may be
        # among them is looked up in the rows written so far. None once a checked page
        # came (an import's: its ids need no look-up, nor remembering).
        seen: SeenIds | None = SeenIds()
        last_seq, last_ts, open_end = 0, None, None
        created = False
        what = f"creating session {session.id!r}"
        theirs: Exception | None = None
        try:
            async with translated(what), pool.acquire() as conn, conn.transaction():
                while (page := await _next(pages)) is not None:
                    refuse_nul(page, what)
                    if isinstance(page, CheckedPage):
                        seen, maybe = None, []
                    elif seen is None:
                        maybe = [p.id for p in page]  # after checked pages: every id
                    else:
                        # A page's repeat of its own ids is a hit too, found unwritten:
                        # the plan skips it as a repeat within the batch.
                        maybe = [p.id for p in page if seen.add(p.id)]
                    known: dict[str, int] = {}
                    if maybe and created:
                        rows = await conn.fetch(self._written, session.id, maybe)
                        known = {row[0]: row[1] for row in rows}
                    plan = plan_append(
                        session.id,
                        page,
                        last_seq=last_seq,
                        last_ts=last_ts,
                        known_ids=known,
                        now=now,
                    )
                    open_end = check_batch_marks(plan.new, open_end)
                    new = plan.new
                    if not created:
                        await self._first(conn, session, values, new, plan.last_seq, plan.last_ts)
                        created = True
                    elif new:
                        await conn.execute(
                            self._page,
                            session.id,
                            [seq for _, seq, _ in new],
                            [p.id for p, _, _ in new],
                            [ts for _, _, ts in new],
                            [p.type for p, _, _ in new],
                            [p.payload_json.decode() for p, _, _ in new],
                            [p.metadata_json.decode() for p, _, _ in new],
                            [p.batch_end for p, _, _ in new],
                        )
                    last_seq, last_ts = plan.last_seq, plan.last_ts
                if open_end is not None:
                    # Kept as given, a copy back to files would refuse the session.
                    raise InvalidInputError(f"a batch mark names event {open_end}, beyond the log")
                if not created:  # no page at all: an empty session
                    await self._first(conn, session, values, [], 0, None)
                else:
                    await conn.execute(self._head, session.id, last_seq, last_ts)
        except _PageError as failed:
            theirs = failed.error
        if theirs is not None:
            # The pages' own error (a bad event, the source's failure) as the other
            # backends raise it, not as PostgreSQL's ("unreachable; retrying is safe").
            raise theirs
        return last_seq

    async def _first(
        self,
        conn: Any,
        session: Session,
        values: Sequence[object],
        new: Sequence[tuple[PendingEvent, int, datetime]],
        last_seq: int,
        last_ts: datetime | None,
    ) -> None:
        created = await conn.fetchval(
            self._create,
            session.id,
            [p.id for p, _, _ in new],
            [ts for _, _, ts in new],
            [p.type for p, _, _ in new],
            [p.payload_json.decode() for p, _, _ in new],
            [p.metadata_json.decode() for p, _, _ in new],
            *values[1:],
            last_seq,
            last_ts,
            [p.batch_end for p, _, _ in new],
        )
        if not created:
            raise SessionExistsError(session.id)
