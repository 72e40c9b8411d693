"""Review 11: PostgreSQL's paged session creation remembers its ids as hashes, and looks a
hit up in the rows it wrote (see tests/test_review11_copy_ids.py)."""

from __future__ import annotations

import pytest

import agentstore
from tests.test_review11_copy_ids import (
    check_a_hash_hit_is_looked_up,
    check_a_plain_page_after_checked_ones,
    check_a_repeat_across_pages_is_skipped,
)


async def test_a_repeat_across_pages_is_skipped(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        await check_a_repeat_across_pages_is_skipped(store)


async def test_a_hash_hit_is_looked_up(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with agentstore.open(pg_url) as store:
        await check_a_hash_hit_is_looked_up(store, monkeypatch)


async def test_a_plain_page_after_checked_ones(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        await check_a_plain_page_after_checked_ones(store)
