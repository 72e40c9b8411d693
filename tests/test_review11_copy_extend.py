"""Review 11: `agentstore copy` into a session DST already holds. A diverged history is
refused with DST untouched (its name and labels too), and extending a long session holds
a page of it, not the whole session (both failed before their fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli, agentstore_cli_peak


async def test_a_diverged_session_is_refused_before_its_details_are_written(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    async with agentstore.open(src) as store:
        sid = (await store.create_session(name="first", labels={"team": "a"})).id
        await store.append(sid, new_event("custom", {"n": 1}))
    assert agentstore_cli("copy", src, dst).returncode == 0
    # Both go on on their own: the same id, the same creation time, another history.
    async with agentstore.open(dst) as store:
        await store.append(sid, new_event("custom", {"in": "dst"}))
        before = await store.get_session(sid)
    async with agentstore.open(src) as store:
        for n in range(2):
            await store.append(sid, new_event("custom", {"in": "src", "n": n}))
        await store.update_session(sid, name="renamed", labels={"team": "b"})

    copied = agentstore_cli("copy", src, dst)

    assert copied.returncode == 1
    assert f"session {sid}" in copied.stderr and "differs" in copied.stderr
    assert "Traceback" not in copied.stderr
    async with agentstore.open(dst, read_only=True) as store:
        assert await store.get_session(sid) == before  # still "first", team a, 2 events


async def test_a_session_with_more_events_in_dst_is_refused_before_its_details_are_written(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    async with agentstore.open(src) as store:
        sid = (await store.create_session(name="first")).id
        await store.append(sid, new_event("custom", {"n": 1}))
    assert agentstore_cli("copy", src, dst).returncode == 0
    async with agentstore.open(dst) as store:
        for n in range(2):
            await store.append(sid, new_event("custom", {"in": "dst", "n": n}))
        before = await store.get_session(sid)
    async with agentstore.open(src) as store:
        await store.append(sid, new_event("custom", {"in": "src"}))
        await store.update_session(sid, name="renamed")

    copied = agentstore_cli("copy", src, dst)

    assert copied.returncode == 1 and "differs" in copied.stderr
    async with agentstore.open(dst, read_only=True) as store:
        assert await store.get_session(sid) == before


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
async def test_extending_a_long_session_holds_a_page_of_it(tmp_path: Path) -> None:
    # Before, the check that DST holds SRC's beginning read both whole: 40,000 events
    # took 92 MB more than 4,000 (10 MB now; a 400,000-event session ten times that).
    peaks = []
    for count in (4_000, 40_000):
        src, dst = tmp_path / f"src{count}", tmp_path / f"dst{count}"
        async with agentstore.open(src, durability="flush") as store:
            sid = (await store.create_session()).id
            for k in range(count // 1000):
                page = [{"k": k, "i": i, "pad": "p" * 200} for i in range(1000)]
                await store.append_many(sid, [new_event("custom", p) for p in page])
        assert agentstore_cli("copy", src, dst).returncode == 0
        async with agentstore.open(src, durability="flush") as store:
            await store.append(sid, new_event("custom", {"last": True}))
        extended, peak = agentstore_cli_peak("copy", src, dst)
        assert extended.returncode == 0 and "extended 1" in extended.stdout, extended.stderr
        peaks.append(peak)
        assert (dst / "events" / f"{sid}.jsonl").read_bytes() == (
            src / "events" / f"{sid}.jsonl"
        ).read_bytes()
    assert peaks[1] - peaks[0] < 25, peaks
