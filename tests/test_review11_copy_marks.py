"""Review 11: the compact form `agentstore copy` holds a session's batch marks in (runs, a
batch each: agentstore_cli/copymarks.py) reads as the marks it was made from, whatever
their order or shape; marks that do not fit stay as given, for the import to refuse."""

from __future__ import annotations

import random

import pytest

from agentstore_cli.copymarks import compact_marks


def _marks_of(batches: list[int]) -> dict[int, int]:
    """The marks of a log appended in batches of these sizes (1: an event alone)."""
    marks: dict[int, int] = {}
    seq = 0
    for size in batches:
        end = seq + size
        marks.update({n: end for n in range(seq + 1, end)})
        seq = end
    return marks


@pytest.mark.parametrize("seed", range(20))
def test_compact_marks_read_as_the_marks(seed: int) -> None:
    rng = random.Random(seed)
    batches = [rng.choice([1, 1, 2, 3, 100, 1000]) for _ in range(rng.randint(0, 300))]
    marks = _marks_of(batches)
    if seed % 4 == 1:  # another order than the log's
        marks = dict(rng.sample(sorted(marks.items()), len(marks)))
    if seed % 4 == 2 and marks:  # a mark that breaks a run (a damaged log's)
        seq = rng.choice(sorted(marks))
        marks[seq] += 7
    runs, last = compact_marks(marks)
    assert runs == marks and dict(runs) == marks and len(runs) == len(marks)
    assert last == max(marks, default=0)
    total = len(marks) + sum(batches) + 2
    for seq in range(-1, total):
        assert (seq in runs) == (seq in marks)
        assert runs.get(seq) == marks.get(seq)
    assert "1" not in runs and 1.5 not in runs
    if seed % 4 == 0:  # a batch is one run: three numbers, not an entry an event
        assert len(runs._starts) == sum(1 for size in batches if size > 1)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "marks",
    [{1: 2**70}, {2**70: 3}, {"1": 2}, {1: "2"}, {1: 2.0}],
    ids=["huge-end", "huge-seq", "str-seq", "str-end", "float-end"],
)
def test_marks_that_do_not_fit_stay_as_given(marks: dict[object, object]) -> None:
    kept, _ = compact_marks(marks)  # type: ignore[arg-type]
    assert kept == marks


def test_no_marks() -> None:
    assert compact_marks(None) == (None, 0)
    runs, last = compact_marks({})
    assert runs == {} and last == 0
