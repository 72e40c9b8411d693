"""The ids a new session's events used so far, held in a few bytes each.

Fork, import and `agentstore copy` create a session a page at a time, so that a session of
any size is never held whole; but the check that no id comes twice must remember every id
that went by. In dicts of the id strings that took about 220 bytes an event (the import's
check, and again the new log's writer): GBs for a session of tens of millions of events.
Here an id is a digest in sorted arrays: `IdNumbers` (an import's check, which names the
earlier event of a repeat) about 18 bytes an id, `SeenIds` (a writer's, whose hits are then
looked up in what it wrote) about 10; a writer given an import's pages (`CheckedPage`)
keeps none.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from hashlib import blake2b

from agentstore.backends.types import PendingEvent

__all__ = ["CheckedPage", "IdNumbers", "SeenIds"]

_MASK = (1 << 64) - 1
_SPLIT = 256
"""Keys a bucket holds on average before the buckets double: a lookup is a bisection of a
few steps, an insert a move of a KB or two; a bucket's own arrays cost a byte a key."""


class CheckedPage(list[PendingEvent]):
    """A page of a new session's events whose ids were checked by its maker: none is in a
    page before it of the same creation, nor twice in it (`import_pages` refuses a repeat).

    A backend creating the session from pages need not remember these ids to skip a repeat
    (as `create_session` does); a plain page after them has each of its ids looked up.
    """


class _Buckets:
    """Sorted 64-bit keys, each with values (one `array` type code each), in buckets by the
    keys' top bits.

    A bucket is a sorted `array` of keys (and one per value, in step): a lookup is a
    bisection, an insert a move of the bucket's tail. When the buckets average `_SPLIT`
    keys they double, each split in two at the middle of its range (still sorted: a cut).
    """

    __slots__ = ("count", "keys", "limit", "shift", "values")

    def __init__(self, codes: str) -> None:
        self.shift = 64  # a key's bucket: key >> shift (64: the one bucket)
        self.keys: list[array[int]] = [array("Q")]
        self.values: list[tuple[array[int], ...]] = [tuple(array(c) for c in codes)]
        self.count = 0
        self.limit = _SPLIT

    def grown(self) -> None:
        """Double the buckets (they average `_SPLIT` keys: `count > limit`)."""
        if self.shift > 0:
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

    def widen(self, column: int) -> None:
        """Hold a value column in 64 bits (it was 32)."""
        self.values = [
            tuple(array("Q", c) if i == column else c for i, c in enumerate(columns))
            for columns in self.values
        ]


class SeenIds:
    """Which ids went by, as 64-bit hashes: 8 bytes an id (about 10 in all).

    `add` answers "maybe seen": two ids share a hash about once in 2**64 pairs (a session of
    100 million events: about one chance in 3,700 of one such pair), so the caller looks a
    hit up in what it wrote (a new log: its lines; PostgreSQL: its rows). Python's own
    string hash: computed once per string, and keyed per process (ids chosen to collide
    cost only those look-ups).
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table = _Buckets("")

    def __len__(self) -> int:
        return self._table.count

    def add(self, event_id: str) -> bool:
        """Remember `event_id`; tell whether it may have been added before (look it up)."""
        key = hash(event_id) & _MASK
        table = self._table
        keys = table.keys[key >> table.shift]
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return True
        keys.insert(i, key)
        table.count += 1
        if table.count > table.limit:
            table.grown()
        return False


class IdNumbers:
    """Ids and the sequence numbers they came at, as 96-bit digests: 16 bytes an id (about
    18 in all; 20 past 2**32 events).

    An import refuses an id that comes twice, naming the event it repeats; it cannot look
    back at its events (they went by, a page at a time), so a digest hit is taken for a
    repeat: with BLAKE2b's 96 bits, an import of a billion events has about one chance in
    150 billion of two ids with one digest (refused as a repeat that is none; the import
    tried again refuses it again: the digest is not keyed).
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        # The digest's first 64 bits are the key; its last 32 and the number, the values.
        self._table = _Buckets("II")

    def __len__(self) -> int:
        return self._table.count

    def setdefault(self, event_id: str, number: int) -> int:
        """The number `event_id` came at before; if none, remember `number` and return it."""
        whole = int.from_bytes(
            blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=12).digest()
        )
        high, low = whole >> 32, whole & 0xFFFFFFFF
        table = self._table
        b = high >> table.shift
        keys = table.keys[b]
        lows, numbers = table.values[b]
        i = j = bisect_left(keys, high)
        while j < len(keys) and keys[j] == high:  # the first 64 bits alone: once in 2**64
            if lows[j] == low:
                return numbers[j]
            j += 1
        if number > 0xFFFFFFFF and numbers.typecode == "I":
            table.widen(1)
            numbers = table.values[b][1]
        keys.insert(i, high)
        lows.insert(i, low)
        numbers.insert(i, number)
        table.count += 1
        if table.count > table.limit:
            table.grown()
        return number
