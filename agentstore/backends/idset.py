"""The ids a new session's events used so far, held in a few bytes each.

Fork, import and `agentstore copy` create a session a page at a time, so that a session of
any size is never held whole; but the check that no id comes twice must remember every id
that went by. In dicts of the id strings that took about 170 bytes an event, twice (the
import's check and the new log's writer): GBs for a session of tens of millions of events.
Here an id is a 64- or 128-bit digest in sorted arrays: 8 bytes an event for `SeenIds`
(whose hits are then checked exactly against what was written), 24 for `IdNumbers` (which
names the earlier event of a repeat).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from hashlib import blake2b

__all__ = ["IdNumbers", "SeenIds"]

_MASK = (1 << 64) - 1
_SPLIT = 64
"""Keys a bucket holds on average before the buckets double: a lookup is a bisection of a
few steps, an insert a move of a few hundred bytes; a bucket's own arrays cost under 4
bytes a key."""


class _Buckets:
    """Sorted 64-bit keys, each with `width` 64-bit values, in buckets by their top bits.

    A bucket is a sorted `array` of keys (and one per value, in step): a lookup is a
    bisection, an insert a move of the bucket's tail. When the buckets average `_SPLIT`
    keys they double, each split in two at the middle of its range (still sorted: a cut).
    """

    __slots__ = ("count", "keys", "limit", "shift", "values")

    def __init__(self, width: int) -> None:
        self.shift = 64  # a key's bucket: key >> shift (64: the one bucket)
        self.keys: list[array[int]] = [array("Q")]
        self.values: list[tuple[array[int], ...]] = [tuple(array("Q") for _ in range(width))]
        self.count = 0
        self.limit = _SPLIT

    def grown(self) -> None:
        """Count an insert; double the buckets when they are full."""
        self.count += 1
        if self.count > self.limit and self.shift > 0:
            shift = self.shift - 1
            keys: list[array[int]] = []
            values: list[tuple[array[int], ...]] = []
            for b in range(len(self.keys)):
                # Each old bucket dropped once split: the table never stands twice in memory.
                old, columns = self.keys[b], self.values[b]
                self.keys[b], self.values[b] = array("Q"), ()
                cut = bisect_left(old, ((b << 1) | 1) << shift)
                keys += (old[:cut], old[cut:])
                values += (tuple(c[:cut] for c in columns), tuple(c[cut:] for c in columns))
            self.keys, self.values, self.shift = keys, values, shift
            self.limit = _SPLIT * len(keys)


class SeenIds:
    """Which ids went by, as 64-bit hashes: 8 bytes an id (and a few).

    `add` answers "maybe seen": two ids share a hash about once in 2**64 pairs (a session of
    100 million events: about one chance in 3,700 of one such pair), so the caller checks a
    hit against what it wrote (a new log: its lines; PostgreSQL: its rows). Python's own
    string hash: computed once per string, and keyed per process (ids chosen to collide
    cost only those checks).
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table = _Buckets(0)

    def __len__(self) -> int:
        return self._table.count

    def add(self, event_id: str) -> bool:
        """Remember `event_id`; tell whether it may have been added before (check it)."""
        key = hash(event_id) & _MASK
        table = self._table
        keys = table.keys[key >> table.shift]
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return True
        keys.insert(i, key)
        table.grown()
        return False


class IdNumbers:
    """Ids and the sequence numbers they came at, as 128-bit digests: 24 bytes an id.

    An import refuses an id that comes twice, naming the event it repeats; it cannot look
    back at its events (they went by, a page at a time), so a digest hit is taken for a
    repeat: with BLAKE2b's 128 bits, an import of a billion events has about one chance in
    10**21 of two ids with one digest (refused as a repeat that is none).
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table = _Buckets(2)  # the digest's other half, the sequence number

    def __len__(self) -> int:
        return self._table.count

    def setdefault(self, event_id: str, number: int) -> int:
        """The number `event_id` came at before; if none, remember `number` and return it."""
        whole = int.from_bytes(
            blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        )
        high, low = whole >> 64, whole & _MASK
        table = self._table
        b = high >> table.shift
        keys = table.keys[b]
        lows, numbers = table.values[b]
        i = j = bisect_left(keys, high)
        while j < len(keys) and keys[j] == high:  # the high half alone: once in 2**64
            if lows[j] == low:
                return numbers[j]
            j += 1
        keys.insert(i, high)
        lows.insert(i, low)
        numbers.insert(i, number)
        table.grown()
        return number
