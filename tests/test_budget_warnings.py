"""A cost budget set where calls cannot be priced is reported by the store, not passed silently."""

from __future__ import annotations

import logging

import pytest

import agentstore
from agentstore import Budget


async def test_create_and_update_warn_about_an_unpriced_cost_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "agentstore.pricing")
    async with agentstore.open(in_memory=True, pricing=False) as store:
        session = await store.create_session(budget=Budget(max_cost_usd=2.0))
        assert "max_cost_usd=2.0" in caplog.text and "pricing=False" in caplog.text
        caplog.clear()
        await store.update_session(session.id, budget=Budget(max_cost_usd=3.0))
        assert "max_cost_usd=3.0" in caplog.text
        caplog.clear()
        await store.create_session(budget=Budget(max_tokens=100))  # tokens are always known
        assert caplog.text == ""


async def test_a_priced_store_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "agentstore.pricing")
    async with agentstore.open(in_memory=True) as store:
        await store.create_session(budget=Budget(max_cost_usd=2.0))
    assert caplog.text == ""
