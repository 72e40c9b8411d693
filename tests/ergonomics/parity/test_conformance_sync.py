"""The conformance suite of tests/backends, every test run through `SyncStore`.

The tests are imported from the suite's modules; the fixtures of this directory's
conftest make their `store` a `SyncStore` (see there).
"""

from __future__ import annotations

from tests.backends.test_append import *  # noqa: F403
from tests.backends.test_isolation import *  # noqa: F403
from tests.backends.test_lifecycle import *  # noqa: F403
from tests.backends.test_replay import *  # noqa: F403
from tests.backends.test_sessions import *  # noqa: F403
from tests.backends.test_state import *  # noqa: F403
