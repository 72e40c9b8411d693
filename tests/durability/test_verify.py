"""`Store.verify()` and `agentstore verify`: every kind of problem, reported as file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest
from typer.testing import CliRunner

import agentstore
from agentstore import (
    SessionNotFoundError,
    StoreLockedError,
    VerifyProblem,
    VerifyReport,
    new_event,
)
from agentstore_cli.app import app
from tests.conftest import GO_LONG


async def _make(data: Path, sid: str = "s", count: int = 5) -> Path:
    async with agentstore.open(data, snapshot_interval=0) as store:
        await store.create_session(session_id=sid)
        for i in range(count):
            await store.append(sid, new_event("custom", {"i": i}))
    return data / "events" / f"{sid}.jsonl"


def _edit(log: Path, index: int, **changes: object) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    obj = orjson.loads(lines[index])
    obj.update(changes)
    # A line without a checksum, as the Go original writes them: these tests are about the
    # rules every log keeps, which verify checks on such lines too (checksums: see below).
    obj.pop("crc32c", None)
    lines[index] = orjson.dumps(obj) + b"\n"
    log.write_bytes(b"".join(lines))


async def _verify(data: Path, **kwargs: object) -> VerifyReport:
    async with agentstore.open(data, read_only=True) as store:
        return await store.verify(**kwargs)  # type: ignore[arg-type]


async def test_clean_store(tmp_path: Path) -> None:
    await _make(tmp_path, "a")
    await _make(tmp_path, "b", count=0)
    report = await _verify(tmp_path)
    assert report.ok and (report.sessions, report.events) == (2, 5)
    assert report.problems == report.repairs == report.notes == []


async def test_go_original_data_verifies(go_data: Path) -> None:
    report = await _verify(go_data)
    assert report.ok, [str(p) for p in report.problems]
    assert report.sessions == 2
    assert any(GO_LONG in note and "Go original" in note for note in report.notes)


@pytest.mark.parametrize(
    ("edit", "kind", "line"),
    [
        (lambda log: _edit(log, 2, sequence_number=7), "sequence", 3),
        (lambda log: _edit(log, 1, session_id="other"), "session_id", 2),
        (lambda log: _edit(log, 3, timestamp="2001-01-01T00:00:00Z"), "timestamp", 4),
        (
            lambda log: _edit(log, 4, id=orjson.loads(log.read_bytes().split(b"\n")[0])["id"]),
            "duplicate_id",
            5,
        ),
        (lambda log: _edit(log, 1, type="Not A Type"), "bad_line", 2),
        (
            lambda log: log.write_bytes(
                b"\n".join(
                    b"{oops" if n == 2 else line
                    for n, line in enumerate(log.read_bytes().split(b"\n"))
                )
            ),
            "bad_line",
            3,
        ),
    ],
    ids=["gap", "wrong-session", "time-goes-back", "duplicate-id", "bad-type", "bad-json"],
)
async def test_each_problem_is_found_with_its_line(
    tmp_path: Path, edit: object, kind: str, line: int
) -> None:
    log = await _make(tmp_path)
    edit(log)  # type: ignore[operator]
    report = await _verify(tmp_path)
    assert [(p.kind, p.line, p.path) for p in report.problems] == [(kind, line, str(log))]
    assert str(report.problems[0]).startswith(f"{log}:{line}: ")
    assert not report.ok


async def test_a_missing_line_is_a_gap(tmp_path: Path) -> None:
    log = await _make(tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2] + lines[3:]))
    report = await _verify(tmp_path)
    assert [(p.kind, p.line) for p in report.problems] == [("sequence", 3)]


async def test_torn_tail_and_repair(tmp_path: Path) -> None:
    log = await _make(tmp_path)
    good = log.read_bytes()
    log.write_bytes(good + b'{"id":"x"')
    report = await _verify(tmp_path)
    [problem] = report.problems
    assert (problem.kind, problem.line, problem.repairable) == ("torn_tail", 6, True)
    with pytest.raises(StoreLockedError):
        await _verify(tmp_path, repair=True)
    async with agentstore.open(tmp_path) as store:
        repaired = await store.verify("s", repair=True)
    assert repaired.ok and len(repaired.repairs) == 1
    assert f"{log}:6: moved a torn tail of 9 bytes to s.jsonl.torn-" in repaired.repairs[0]
    assert log.read_bytes() == good
    [moved] = tmp_path.glob("events/s.jsonl.torn-*")
    assert moved.read_bytes() == b'{"id":"x"'
    again = await _verify(tmp_path)
    assert again.ok and any("quarantined" in note for note in again.notes)


async def test_snapshot_beyond_the_log(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=2) as store:
        await store.create_session(session_id="s")
        for i in range(4):
            await store.append("s", new_event("custom", {"i": i}))
    log = tmp_path / "events" / "s.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:3]))
    async with agentstore.open(tmp_path, snapshot_interval=2) as store:
        report = await store.verify()
        assert [p.kind for p in report.problems] == ["snapshot"]
        assert "covers 4 events but the log holds 3" in report.problems[0].message
        assert (await store.get_state("s")).event_count == 3  # the store ignores it


async def test_session_file_problems(tmp_path: Path) -> None:
    await _make(tmp_path, "a")
    await _make(tmp_path, "b")
    (tmp_path / "sessions" / "a.json").write_bytes(b"{not json")
    (tmp_path / "sessions" / "b.json").write_bytes(
        (tmp_path / "sessions" / "b.json").read_bytes().replace(b'"b"', b'"c"')
    )
    report = await _verify(tmp_path)
    assert [(p.session_id, p.kind) for p in report.problems] == [
        ("a", "session_file"),
        ("b", "session_file"),
    ]


async def test_one_session_and_unknown_session(tmp_path: Path) -> None:
    await _make(tmp_path, "a")
    log_b = await _make(tmp_path, "b")
    _edit(log_b, 0, sequence_number=9)
    assert (await _verify(tmp_path, session_id="a")).ok
    assert not (await _verify(tmp_path, session_id="b")).ok
    with pytest.raises(SessionNotFoundError):
        await _verify(tmp_path, session_id="zzz")


async def test_memory_backend(tmp_path: Path) -> None:
    async with agentstore.open(in_memory=True, snapshot_interval=3) as store:
        session = await store.create_session()
        for i in range(7):
            await store.append(session.id, new_event("tool_called", {"i": i}))
        report = await store.verify()
    assert report.ok and (report.sessions, report.events) == (1, 7)


def test_problem_str() -> None:
    problem = VerifyProblem("s", "events/s.jsonl", 3, "sequence", "boom")
    assert str(problem) == "events/s.jsonl:3: boom"
    assert str(VerifyProblem("s", "sessions/s.json", None, "session_file", "x")) == (
        "sessions/s.json: x"
    )


# --- the command line ---------------------------------------------------------------------


def test_cli_verify(tmp_path: Path) -> None:
    log = anyio.run(_make, tmp_path, "abcdef")
    runner = CliRunner()
    ok = runner.invoke(app, ["--data-dir", str(tmp_path), "verify"])
    assert ok.exit_code == 0 and "checked 1 session, 5 events: no problems" in ok.stdout
    log.write_bytes(log.read_bytes() + b"{torn")
    bad = runner.invoke(app, ["--data-dir", str(tmp_path), "verify", "abc"])
    assert bad.exit_code == 1
    assert f"{log}:6: torn tail" in bad.stdout and "--repair" in bad.stdout
    as_json = runner.invoke(app, ["--data-dir", str(tmp_path), "verify", "--format", "json"])
    assert as_json.exit_code == 1
    parsed = orjson.loads(as_json.stdout)
    assert parsed["problems"][0]["kind"] == "torn_tail" and parsed["ok"] is False
    fixed = runner.invoke(app, ["--data-dir", str(tmp_path), "verify", "--repair"])
    assert fixed.exit_code == 0
    assert "repaired: " in fixed.stdout and "moved a torn tail of 5 bytes" in fixed.stdout
    assert runner.invoke(app, ["--data-dir", str(tmp_path), "verify"]).exit_code == 0


def test_cli_verify_errors_are_one_line(tmp_path: Path) -> None:
    anyio.run(_make, tmp_path, "abc")
    result = subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "--data-dir", str(tmp_path), "verify", "zzz"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: session 'zzz' not found"]
    missing = tmp_path / "missing"
    result = subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "--data-dir", str(missing), "verify", "--repair"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "no data directory" in result.stderr
    assert not missing.exists()


async def test_a_batch_cut_in_the_middle_is_found(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
        await store.append_many("s", [new_event("custom", {"b": i}) for i in range(3)])
        await store.append("s", new_event("custom", {"single": True}))
    assert (await _verify(tmp_path)).ok
    log = tmp_path / "events" / "s.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    obj = orjson.loads(lines[1])
    del obj["batch_end"]
    del obj["crc32c"]  # as a program that edits lines and knows nothing of checksums
    lines[1] = orjson.dumps(obj) + b"\n"
    log.write_bytes(b"".join(lines))
    report = await _verify(tmp_path)
    assert [(p.kind, p.line) for p in report.problems] == [("batch", 2)]
