"""Fixtures of the ergonomics tests.

`pytester` (for the plugin tests) is loaded here: pytest refuses `pytest_plugins` in a
conftest below the root one, so the plugin is imported when this conftest is configured.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
