"""A third-party backend plugs in through the `agentstore.backends` entry-point group.

The test installs a distribution's metadata (a `.dist-info` folder with entry_points.txt)
on `sys.path`, exactly as `pip install` of a plugin would, and opens `thin://...` URLs
without agentstore knowing the plugin. The plugin then passes the conformance contract.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentstore
from agentstore.backends import registry
from agentstore.backends.registry import BackendOptions, backend_for
from agentstore.testing.conformance import BackendContract, BackendFactory
from tests.thirdparty.thin_backend import ThinBackend


@pytest.fixture(scope="module", autouse=True)
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    site = tmp_path_factory.mktemp("site")
    info = site / "agentstore_thin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: agentstore-thin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[agentstore.backends]\nthin = tests.thirdparty.thin_backend:open_backend\n"
    )
    sys.path.insert(0, str(site))
    try:
        yield
    finally:
        sys.path.remove(str(site))


async def test_open_finds_the_plugin_by_its_scheme() -> None:
    async with agentstore.open("thin://plugin-test", read_only=False) as store:
        assert isinstance(store.backend, ThinBackend)
        assert store.backend.name == "plugin-test"
        session = await store.create_session(name="via a plugin")
        await store.append(session.id, agentstore.new_event("custom", {"n": 1}))
    async with agentstore.open("thin://plugin-test") as again:
        assert (await again.get_session(session.id)).event_count == 1


def test_an_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(agentstore.BackendUnavailableError) as info:
        backend_for("nosuch://x", BackendOptions())
    message = str(info.value)
    assert "nosuch://" in message and "thin" in message and "postgresql" in message
    assert isinstance(info.value, ImportError)


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._BUILT_IN,
        "fancydb",
        ("agentstore.backends._not_installed_here", "open_backend", "fancydb"),
    )
    with pytest.raises(agentstore.BackendUnavailableError, match=r"agentstore\[fancydb\]"):
        agentstore.open("fancydb://host/db")


def test_a_backend_instance_is_used_as_it_is() -> None:
    backend = ThinBackend("direct", BackendOptions())
    assert agentstore.open(backend).backend is backend


@pytest.mark.parametrize("target", ["", 42])
def test_a_bad_target_is_refused(target: object) -> None:
    with pytest.raises(agentstore.InvalidInputError):
        agentstore.open(target)  # type: ignore[arg-type]


def test_memory_and_file_urls(tmp_path: Path) -> None:
    assert type(agentstore.open("memory://").backend).__name__ == "MemoryBackend"
    store = agentstore.open(f"file://{tmp_path}/data")
    assert type(store.backend).__name__ == "FileBackend"
    with pytest.raises(agentstore.InvalidInputError):
        agentstore.open("./data", in_memory=True)


def test_import_agentstore_imports_no_backend() -> None:
    code = (
        "import sys, agentstore\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('agentstore.backends.'))\n"
        "print(','.join(loaded)); print('fcntl' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        # The contract (base, types, idset) and the registry: no backend, no file locks.
        "agentstore.backends.base,agentstore.backends.idset,agentstore.backends.registry,"
        "agentstore.backends.types",
        "False",
    ]


class TestThinBackendContract(BackendContract):
    """The plugin passes the same contract as the built-in backends, opened by URL."""

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        url = f"thin://{uuid.uuid4()}"
        return lambda: backend_for(url, BackendOptions())
