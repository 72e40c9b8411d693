"""Events as JSON lines: the one encoding of the file backend, export and the HTTP layer.

A stored event is one JSON object on one line, with the Go original's field names::

    {"id":"…","session_id":"s","sequence_number":3,"type":"tool_called","payload":{…},
     "timestamp":"2026-11-29T12:00:00.123456Z","metadata":{…},"crc32c":"1a2b3c4d"}

Two fields are ours (the Go original ignores fields it does not know):

- `batch_end` (on every line of an `append_many` batch but its last): the batch's last
  sequence number, so that a batch a crash cut short is recognised.
- `crc32c`, always the last field: the CRC-32C (Castagnoli) of the line without this field,
  as 8 lower-case hex digits. The checksummed bytes are the line with `,"crc32c":"…"`
  removed, i.e. `{…,"metadata":{…}}` (plus `batch_end` if any). A line without it (written
  by the Go original, or by agentstore before 0.2) is read without a check.

CRC-32C because it is what storage formats use for this (iSCSI, ext4 metadata, LevelDB,
Kafka): every platform has it (Go's `hash/crc32` with the Castagnoli table, in its standard
library), and `google-crc32c` computes it in hardware: 78 ns for a 280-byte line, against
128 ns for `zlib.crc32` (CRC-32, not C) and 41 ns for xxh3-64 (a third-party hash in every
language but C), all far below decoding the line (~560 ns with orjson). Measured on the
project machine with `timeit`, best of 5.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from google_crc32c import value as _crc32c

from agentstore.errors import CorruptLogError
from agentstore.events import Event, decode_event, format_timestamp, parse_timestamp

__all__ = [
    "CHECKSUM_FIELD",
    "batch_end",
    "checksum_ok",
    "decode_event",
    "decode_line",
    "decode_object",
    "encode_line",
    "format_timestamp",
    "parse_timestamp",
]

CHECKSUM_FIELD = "crc32c"
_CRC_KEY = b',"crc32c":"'
# `,"crc32c":"` + 8 hex digits + `"}`: the fixed-size end of every line we write.
_CRC_TAIL = len(_CRC_KEY) + 8 + 2
_BATCH_KEY = b',"batch_end":'
_UTC_Z = orjson.OPT_UTC_Z


def encode_line(
    event_id: str,
    session_id: str,
    sequence_number: int,
    type_name: str,
    payload_json: bytes,
    timestamp: datetime,
    metadata_json: bytes,
    batch_end: int | None = None,
) -> bytes:
    """Build one stored line (with its checksum and trailing newline) from encoded parts."""
    body = b"".join(
        (
            b'{"id":',
            orjson.dumps(event_id),
            b',"session_id":',
            orjson.dumps(session_id),
            b',"sequence_number":',
            str(sequence_number).encode(),
            b',"type":"',
            type_name.encode(),
            b'","payload":',
            payload_json,
            b',"timestamp":',
            orjson.dumps(timestamp, option=_UTC_Z),
            b',"metadata":',
            metadata_json,
            b"" if batch_end is None else _BATCH_KEY + str(batch_end).encode(),
            b"}",
        )
    )
    return b'%s%s%08x"}\n' % (body[:-1], _CRC_KEY, _crc32c(body))


def checksum_ok(line: bytes) -> bool | None:
    """Check a line's checksum (without its newline): True, False, or None if it has none."""
    # A line shorter than the tail slices to something shorter than the key: no match.
    if line[-_CRC_TAIL:-10] != _CRC_KEY or line[-2:] != b'"}':
        return None
    try:
        stored = int(line[-10:-2], 16)
    except ValueError:
        return False
    # The CRC of `body + "}"`: the line without its `,"crc32c":"…"` field.
    crc: int = _crc32c(line[:-_CRC_TAIL] + b"}")
    return crc == stored


def batch_end(line: bytes) -> int | None:
    """Return the `batch_end` mark of a line (with or without its newline), if any."""
    line = line.rstrip(b"\n")
    if checksum_ok(line) is not None:
        line = line[:-_CRC_TAIL] + b"}"
    at = line.rfind(_BATCH_KEY, max(0, len(line) - 40))
    if at < 0 or not line.endswith(b"}"):
        return None
    digits = line[at + len(_BATCH_KEY) : -1]
    return int(digits) if digits.isdigit() else None


def decode_object(line: bytes) -> dict[str, Any]:
    """Check a line's checksum and parse it to a JSON object; raise `CorruptLogError`."""
    if checksum_ok(line) is False:
        raise CorruptLogError("checksum mismatch: the line was changed after it was written")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CorruptLogError(f"not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise CorruptLogError("not a JSON object")
    return obj


def decode_line(line: bytes) -> Event:
    """Decode one stored line (without its newline) to an `Event`; raise `CorruptLogError`."""
    return decode_event(decode_object(line))
