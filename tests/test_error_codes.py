"""Every error class has a stable wire code, and a client can rebuild the same class from it."""

from __future__ import annotations

import agentstore
from agentstore import errors


def _classes() -> list[type[errors.AgentStoreError]]:
    return [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.AgentStoreError)
    ]


def test_every_error_class_has_its_own_code() -> None:
    codes = [cls.code for cls in _classes()]
    assert len(codes) == len(set(codes)), "two error classes share a code"
    for cls in _classes():
        assert "code" in vars(cls), f"{cls.__name__} inherits its code"
        assert cls.code.isidentifier() and cls.code.islower()


def test_codes_are_stable() -> None:
    # Clients in other languages match on these strings: changing one is a breaking change.
    assert agentstore.SessionNotFoundError.code == "session_not_found"
    assert agentstore.ConcurrencyError.code == "concurrency_conflict"
    assert agentstore.StorageUnavailableError.code == "storage_unavailable"
    assert agentstore.InvalidSessionIdError.code == "invalid_session_id"


def test_error_from_code_rebuilds_class_message_and_fields() -> None:
    sent = agentstore.ConcurrencyError("s1", 3, 5)
    got = agentstore.error_from_code(sent.code, str(sent), sent.wire_details())
    assert type(got) is agentstore.ConcurrencyError
    assert str(got) == str(sent)
    assert (got.session_id, got.expected, got.actual) == ("s1", 3, 5)
    missing = agentstore.SessionNotFoundError("abc")
    back = agentstore.error_from_code(missing.code, str(missing), missing.wire_details())
    assert isinstance(back, LookupError) and back.session_id == "abc"


def test_unknown_code_is_the_base_class() -> None:
    got = agentstore.error_from_code("from_a_newer_server", "boom")
    assert type(got) is agentstore.AgentStoreError and str(got) == "boom"


def test_storage_unavailable_is_a_storage_error() -> None:
    assert issubclass(agentstore.StorageUnavailableError, agentstore.StorageError)
    assert issubclass(agentstore.BackendUnavailableError, ImportError)
