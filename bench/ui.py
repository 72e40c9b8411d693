"""`python -m bench.ui [--events N] [--sessions N] [--out bench/RESULTS.md]`: the web UI's load.

Measures, in Debian's headless Chromium against `agentstore ui` on loopback:

- a session of 10,000 events: first contentful paint, time to the first timeline rows
  and to every event loaded, the JS heap once loaded (after a garbage collection), and
  how many rows are in the DOM (the timeline is virtualised: a few dozen, not 10,000);
- a store of 10,000 sessions: the sessions page's first page, and the next page through
  its cursor.

Writes a "Web UI" section into RESULTS.md (replacing the previous one), after the rest of
`python -m bench` has written that file.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

import agentstore
from tests.ui.browser import UiServer, start_chromium
from tests.ui.seed import seed_long

HERE = Path(__file__).parent
RUNS = 3


def _wait(driver: Any, script: str, timeout: float = 120) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script(script)
    )


def _session_load(driver: Any, base: str, sid: str) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(f"{base}/sessions/{sid}")
    _wait(driver, "return document.body.dataset.loaded === 'true'")
    marks = driver.execute_script(
        "const m = (n) => performance.getEntriesByName(n)[0]?.startTime;"
        "const p = performance.getEntriesByType('paint')"
        ".find((e) => e.name === 'first-contentful-paint');"
        "return {fcp: p && p.startTime, rows: m('agentstore:first-rows'),"
        " all: m('agentstore:all-events'),"
        " dom_rows: document.querySelectorAll('#timeline .row').length,"
        " dom_nodes: document.getElementsByTagName('*').length,"
        " events: +document.querySelector('[data-stat=events] .stat-value')"
        ".textContent.replace(/,/g, '')}"
    )
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    driver.execute_cdp_cmd("Performance.enable", {})
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    heap = next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize")
    # Jump to an event near the end through its URL: the virtual list must scroll there.
    start = time.perf_counter()
    driver.execute_script("location.hash = '#seq-9990'")
    _wait(
        driver, "return document.querySelector('#timeline .row.selected')?.dataset.seq === '9990'"
    )
    marks["jump_ms"] = (time.perf_counter() - start) * 1000
    marks["heap_mib"] = heap / 2**20
    return marks


async def _many_sessions(data_dir: Path, count: int) -> None:
    async with agentstore.open(data_dir) as store:
        for index in range(count):
            session = await store.create_session(
                name=f"worker-{index}", labels={"n": str(index % 7)}
            )
            await store.append(session.id, agentstore.user_message(f"job {index}"))


def _sessions_page(driver: Any, base: str) -> dict[str, float]:
    driver.get("about:blank")
    start = time.perf_counter()
    driver.get(f"{base}/")
    _wait(driver, "return document.querySelectorAll('#sessions-table tr[data-id]').length === 50")
    first = (time.perf_counter() - start) * 1000
    ids = driver.execute_script(
        "return document.querySelector('#sessions-table tr[data-id]').dataset.id"
    )
    start = time.perf_counter()
    driver.execute_script("document.getElementById('page-older').click()")
    _wait(
        driver,
        "const r = document.querySelector('#sessions-table tr[data-id]');"
        f"return r && r.dataset.id !== {ids!r} && "
        "document.getElementById('page-status').textContent.startsWith('Page 2')",
    )
    return {"first_ms": first, "next_ms": (time.perf_counter() - start) * 1000}


def run(events: int, sessions: int) -> dict[str, Any]:
    """Run both measurements and return their medians."""
    with tempfile.TemporaryDirectory(prefix="agentstore-bench-ui-") as tmp:
        root = Path(tmp)
        data = root / "one-session"
        sid = seed_long(data, events)
        driver = start_chromium(root / "profile")
        try:
            with_server = UiServer(data)
            try:
                loads = [_session_load(driver, with_server.base, sid) for _ in range(RUNS)]
            finally:
                with_server.stop()
            many = root / "many-sessions"
            start = time.perf_counter()
            anyio.run(_many_sessions, many, sessions)
            seeded_s = time.perf_counter() - start
            server = UiServer(many)
            try:
                pages = [_sessions_page(driver, server.base) for _ in range(RUNS)]
            finally:
                server.stop()
            version = driver.capabilities.get("browserVersion", "?")
        finally:
            driver.quit()

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(float(r[key]) for r in rows)

    return {
        "events": events,
        "sessions": sessions,
        "sessions_seed_s": seeded_s,
        "chromium": version,
        "fcp": median(loads, "fcp"),
        "rows": median(loads, "rows"),
        "all": median(loads, "all"),
        "jump": median(loads, "jump_ms"),
        "heap": median(loads, "heap_mib"),
        "dom_rows": max(r["dom_rows"] for r in loads),
        "dom_nodes": max(r["dom_nodes"] for r in loads),
        "loaded_events": min(r["events"] for r in loads),
        "list_first": median(pages, "first_ms"),
        "list_next": median(pages, "next_ms"),
    }


def section(r: dict[str, Any]) -> str:
    """Return the "Web UI" section of RESULTS.md."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""## Web UI

`python -m bench.ui` ({when}; headless Chromium {r["chromium"]} and `agentstore ui` on
loopback, file store; median of {RUNS} page loads each).

| one session of {r["events"]:,} events | |
|---|---|
| first contentful paint | {r["fcp"]:.0f} ms |
| first timeline rows shown | {r["rows"]:.0f} ms |
| every event loaded (charts, search, state ready) | {r["all"]:.0f} ms |
| jump to `#seq-9990` (scroll, select, inspect) | {r["jump"]:.0f} ms |
| JS heap once loaded (after GC) | {r["heap"]:.1f} MiB |
| timeline rows in the DOM | {r["dom_rows"]} (of {r["loaded_events"]:,} events) |
| DOM elements on the page | {r["dom_nodes"]} |

| sessions page over {r["sessions"]:,} sessions | |
|---|---|
| first page (50 sessions with their summaries) | {r["list_first"]:.0f} ms |
| next page through the cursor | {r["list_next"]:.0f} ms |
"""


def write(out: Path, text: str) -> None:
    """Put `text` into `out` in place of an earlier "Web UI" section (or at the end)."""
    old = out.read_text() if out.exists() else "# agentstore benchmarks\n"
    pattern = re.compile(r"^## Web UI\n.*?(?=^## |\Z)", re.S | re.M)
    new = (
        pattern.sub(lambda _: text + "\n", old)
        if pattern.search(old)
        else old.rstrip() + "\n\n" + text
    )
    out.write_text(new)


def main() -> None:
    """Parse arguments, measure, write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    results = run(args.events, args.sessions)
    text = section(results)
    write(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
