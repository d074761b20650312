"""Chunk plans cover every message once as new, fit the budget, and overlap a little."""

from __future__ import annotations

import itertools
import random

import pytest

from app.core.config import Settings
from app.observer.chunking import plan_chunks
from app.observer.observer import Observer, transcript_budget


def check_plan(sizes: list[int], budget: int, overlap: int) -> None:
    chunks = plan_chunks(sizes, budget, overlap)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(sizes)
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.first_new == previous.end  # new messages are contiguous, none skipped
        assert previous.start <= chunk.start <= chunk.first_new < chunk.end
        assert chunk.first_new - chunk.start <= overlap
    for chunk in chunks:
        if len(chunk) > 1:
            assert sum(sizes[chunk.start : chunk.end]) <= budget


def test_small_conversation_is_one_chunk() -> None:
    chunks = plan_chunks([10] * 20, 1000, 2)
    assert [(c.start, c.end, c.first_new) for c in chunks] == [(0, 20, 0)]


def test_chunks_overlap_by_two_messages() -> None:
    chunks = plan_chunks([10] * 25, 100, 2)
    assert [(c.start, c.end) for c in chunks] == [(0, 10), (8, 18), (16, 25)]
    assert [c.first_new for c in chunks] == [0, 10, 18]


def test_oversized_message_gets_its_own_chunk_and_the_plan_advances() -> None:
    sizes = [10, 10, 500, 10, 10]
    chunks = plan_chunks(sizes, 100, 2)
    assert [(c.start, c.end) for c in chunks] == [(0, 2), (2, 3), (3, 5)]
    check_plan(sizes, 100, 2)


def test_overlap_gives_way_when_it_would_fill_the_chunk() -> None:
    chunks = plan_chunks([60, 60, 60], 100, 2)
    assert [(c.start, c.end, c.first_new) for c in chunks] == [(0, 1, 0), (1, 2, 1), (2, 3, 2)]


@pytest.mark.parametrize("seed", range(20))
def test_random_plans_hold_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([1, 5, 20, 80, 300]) for _ in range(rng.randint(1, 400))]
    check_plan(sizes, rng.choice([100, 250, 1000]), rng.randint(0, 3))


def test_ten_thousand_messages_plan_quickly() -> None:
    chunks = plan_chunks([150] * 10_000, 4600, 2)
    assert len(chunks) == 358
    check_plan([150] * 10_000, 4600, 2)


def test_budget_leaves_room_for_prompt_answer_and_margin() -> None:
    settings = Settings(observer_num_ctx=8192, observer_num_predict=1536)
    budget = transcript_budget(settings)
    assert 4000 < budget < 8192 - 1536 - 819
    bigger = transcript_budget(Settings(observer_num_ctx=16384, observer_num_predict=1536))
    assert bigger > budget + 7000


def test_observer_refuses_a_context_too_small_for_its_prompt() -> None:
    with pytest.raises(ValueError, match="num_ctx"):
        Observer(Settings(observer_num_ctx=1024, observer_num_predict=512))
