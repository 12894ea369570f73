"""Blocks of a batch of known length (reasoner/batch/runner.py `even_blocks`): at most the block
size asked for, as many blocks as a multiple of the workers, so that no worker is left deciding
a last block alone while the others idle."""

from __future__ import annotations

import math

import pytest

from reasoner.batch.runner import blocks_of, even_blocks


@pytest.mark.parametrize("known, size, workers", [
    (600, 200, 2), (599, 200, 2), (1000, 200, 2), (10, 200, 2), (7, 3, 4), (1, 200, 2),
    (100_000, 200, 2), (401, 200, 3), (5, 1, 2),
])
def test_blocks_are_even_across_workers(known, size, workers):
    block = even_blocks(known, size, workers)
    blocks = [len(b) for b in blocks_of(range(known), block)]
    assert sum(blocks) == known
    assert 1 <= block <= size
    assert max(blocks) - min(blocks) <= max(blocks) // 2 or len(blocks) == 1
    # the blocks a worker decides differ by at most one between workers
    rounds = [math.ceil((len(blocks) - w) / workers) for w in range(workers)]
    assert max(rounds) - min(rounds) <= 1
    if known % (workers * block) == 0:  # divisible: every worker the same number of blocks
        assert len(blocks) % workers == 0


def test_600_cases_on_two_workers_are_four_blocks_not_three():
    assert [len(b) for b in blocks_of(range(600), even_blocks(600, 200, 2))] == [150] * 4


def test_no_cases_no_division_by_zero():
    assert even_blocks(0, 200, 2) == 1
