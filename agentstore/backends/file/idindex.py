"""A log's id index: which ids its events have, and near which line, in 8 bytes an id.

An append skips an event whose id the session already has (an idempotent retry), so the
writer must be able to tell, for every id of a batch, whether the log holds it. A dict of
the id strings did that at about 160 bytes an event: a process appending to a long session
(or `agentstore copy` extending one) held every id. Here an id is one 64-bit entry in
sorted bucket arrays (about 11 bytes an id in all): the top 48 bits of its hash, then the
low 16 bits of the block its line is in, or the one before (a block: `BLOCK` sequence
numbers, the span between two of the log's checkpoints).

A lookup answers "maybe": every stored id has its entry, so an id with none is new (no
false negatives), and an id with one is looked up in the lines of the block(s) the entry
names (`LogGroup` does that) before it is taken for a repeat, so two ids sharing 48 bits
of hash cost a read, never an event. A hit is rare: a retry, or one id in 2**48 per
entry. The hash is Python's own (computed once per string, keyed per process: ids chosen
to collide cost only those reads).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence

__all__ = ["BLOCK", "BLOCK_BITS", "HINT_PERIOD", "IdIndex", "digest", "entry_of"]

BLOCK_BITS = 10
BLOCK = 1 << BLOCK_BITS
"""A block is 1024 sequence numbers: `scan.CHECKPOINT_EVERY`, so a block starts at a
checkpoint (an offset the view knows). An entry names the block of its id's line or the
one before (`admit` gives the ids of one call the block of its first), so a look-up reads
at most 2048 lines."""
_HINT = 0xFFFF
"""An entry's low 16 bits: its block, modulo 2**16 (one candidate block up to 67 million
events; past that, one per 2**16 blocks)."""
HINT_PERIOD = _HINT + 1
"""Blocks this far apart share a hint."""
_PREFIX = ((1 << 64) - 1) ^ _HINT
_SPLIT = 64
"""Entries a bucket holds on average before the buckets double: a bisection of 6 steps
(measured: 600 fewer instructions an id than 256's 8), an insert a move of a few
hundred bytes; a bucket's array costs about 2 bytes an entry (10.6 bytes an id in all,
measured on 200,000)."""


digest: Callable[[str], int] = hash
"""The hash whose top 48 bits stand for an id: Python's own, called as a builtin (a
function of ours around it would cost a call per event). A module name: tests forge it."""


def entry_of(event_id: str, seq: int) -> int:
    """The entry of `event_id` stored at sequence number `seq`."""
    return (digest(event_id) & _PREFIX) | ((seq >> BLOCK_BITS) & _HINT)


class IdIndex:
    """The ids of one log, as sorted 64-bit entries in buckets by their top bits.

    Not thread-safe: the log's writer holds the view's mutex (and its `flock`).
    """

    __slots__ = ("_buckets", "_count", "_limit", "_shift")

    def __init__(self, entries: Sequence[int] = ()) -> None:
        count = len(entries)
        shift = 64
        while count > _SPLIT << (64 - shift):
            shift -= 1
        # Raw 8-byte entries per bucket, each sorted on its own: never all as Python ints.
        parts = [array("Q") for _ in range(1 << (64 - shift))]
        for entry in entries:
            parts[entry >> shift].append(entry)
        for b, part in enumerate(parts):
            parts[b] = array("Q", sorted(part))
        self._buckets = parts
        self._shift = shift
        self._count = count
        self._limit = _SPLIT * len(parts)

    def __len__(self) -> int:
        return self._count

    def admit(self, ids: Sequence[str], last_seq: int) -> list[int] | None:
        """Add the ids that have no entry yet, to be numbered `last_seq + 1`, ... in order.

        Returns the positions in `ids` of the others (None: none), which were not added
        and take no number: the caller looks each up (`hints`) and either plans it as a
        repeat or, if it was not one, calls `undo` then `add` with the real numbers.
        """
        if len(ids) <= BLOCK:
            return self._admit(ids, (last_seq + 1) >> BLOCK_BITS & _HINT)
        hits: list[int] = []
        for start in range(0, len(ids), BLOCK):
            part = ids[start : start + BLOCK]
            found = self._admit(part, (last_seq + 1) >> BLOCK_BITS & _HINT)
            last_seq += len(part) - len(found or ())
            hits += (start + at for at in found or ())
        return hits or None

    def _admit(self, ids: Sequence[str], hint: int) -> list[int] | None:
        # The append path, once per event: written for speed. At most `BLOCK` ids, so each
        # is numbered in the block `hint` names or the next: one hint serves them all.
        buckets, shift = self._buckets, self._shift
        hits: list[int] | None = None
        for at, key in enumerate(map(digest, ids)):
            key &= _PREFIX
            keys = buckets[key >> shift]
            i = bisect_left(keys, key)
            try:
                if keys[i] & _PREFIX == key:
                    if hits is None:
                        hits = []
                    hits.append(at)
                    continue
            except IndexError:  # after the bucket's last entry
                pass
            keys.insert(i, key | hint)
        self._count += len(ids) - len(hits or ())
        if self._count > self._limit:
            self._grow()
        return hits

    def hits(self, ids: Sequence[str]) -> list[int] | None:
        """The positions in `ids` of those with an entry (None: none); adds nothing."""
        buckets, shift = self._buckets, self._shift
        hits: list[int] | None = None
        for at, key in enumerate(map(digest, ids)):
            key &= _PREFIX
            keys = buckets[key >> shift]
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] & _PREFIX == key:
                if hits is None:
                    hits = []
                hits.append(at)
        return hits

    def undo(self, ids: Sequence[str], last_seq: int, hits: list[int] | None) -> None:
        """Take back what `admit(ids, last_seq)` added (it returned `hits`)."""
        skip = set(hits or ())
        seq = last_seq
        hint = 0
        for at, event_id in enumerate(ids):
            if at % BLOCK == 0:  # `admit`'s parts: each with the hint of its first number
                hint = (seq + 1) >> BLOCK_BITS & _HINT
            if at not in skip:
                seq += 1
                self._remove((digest(event_id) & _PREFIX) | hint)

    def add(self, event_id: str, seq: int) -> None:
        """Add the entry of `event_id`, stored at `seq` (another process's, or a fix-up)."""
        entry = entry_of(event_id, seq)
        keys = self._buckets[entry >> self._shift]
        keys.insert(bisect_left(keys, entry), entry)
        self._count += 1
        if self._count > self._limit:
            self._grow()

    def hints(self, event_id: str) -> list[int]:
        """The hints of the entries `event_id` shares its 48 bits with: for each, its line
        is in a block `hint + k * HINT_PERIOD` or the block after."""
        key = digest(event_id) & _PREFIX
        keys = self._buckets[key >> self._shift]
        i = bisect_left(keys, key)
        found = []
        while i < len(keys) and keys[i] & _PREFIX == key:
            found.append(keys[i] & _HINT)
            i += 1
        return found

    def _remove(self, entry: int) -> None:
        keys = self._buckets[entry >> self._shift]
        i = bisect_left(keys, entry)
        if i < len(keys) and keys[i] == entry:
            del keys[i]
            self._count -= 1

    def _grow(self) -> None:
        """Double the buckets, each cut at the middle of its range (still sorted)."""
        while self._count > self._limit and self._shift > 16:
            shift = self._shift - 1
            old_buckets = self._buckets
            buckets: list[array[int]] = []
            for b in range(len(old_buckets)):
                # Each old bucket dropped once cut: the entries never stand twice in memory.
                old, old_buckets[b] = old_buckets[b], array("Q")
                cut = bisect_left(old, ((b << 1) | 1) << shift)
                buckets += (old[:cut], old[cut:])
            self._buckets, self._shift = buckets, shift
            self._limit = _SPLIT * len(buckets)
