"""The aggregate of a batch: distributions as counts, themes only when k conversations
share them, and no term of a single conversation."""

from __future__ import annotations

from typing import Any

import orjson

from app.batches.aggregate import aggregate


def doc(tone: str, phrases: list[str], kinds: list[str] = ()) -> bytes:  # type: ignore[assignment]
    result: dict[str, Any] = {
        "patterns": {
            "sentiment": {"overall_tone": tone, "engagement_level": "low"},
            "topics": {"keyphrases": [{"phrase": p, "score": 0.2} for p in phrases]},
            "dialectic": [{"type": k, "excerpt": "secret words"} for k in kinds],
            "dynamics": {"total_turns": 4, "speakers": {"A": {}, "B": {}}},
        },
        "confidence_score": 0.5,
        "themes": [{"label": "Secret label", "keywords": phrases[:1]}],
    }
    return orjson.dumps(result)


def test_two_shared_themes_are_found_and_a_lone_one_is_not() -> None:
    docs = [
        doc("positive", ["garden", "tomato plants", "compost"], ["agreement"]) for _ in range(5)
    ]
    docs += [
        doc("negative", ["invoice", "refund", "billing error"], ["disagreement"]) for _ in range(4)
    ]
    docs += [doc("neutral", ["zeppelin", "helium"])]
    out = aggregate(docs, k=4, total=12)
    assert out["conversations"] == 10 and out["items"] == 12 and out["k"] == 4
    assert out["tones"] == {"positive": 5, "negative": 4, "neutral": 1, "mixed": 0}
    assert out["pattern_types"]["agreement"] == {"conversations": 5, "findings": 5}
    labels = [set(t["terms"]) for t in out["themes"]]
    assert len(labels) == 2
    assert {"garden", "compost"} <= labels[0] and {"invoice", "refund"} <= labels[1]
    assert [t["conversations"] for t in out["themes"]] == [5, 4]
    text = orjson.dumps(out).decode()
    for private in ("zeppelin", "helium", "secret", "Secret"):
        assert private not in text
    assert out["dynamics"]["messages"]["median"] == 4


def test_fewer_than_k_conversations_give_no_themes() -> None:
    docs = [doc("positive", ["garden"]) for _ in range(3)]
    assert aggregate(docs, k=5, total=3)["themes"] == []
    assert aggregate([], k=5, total=0)["tones"] == {
        "positive": 0,
        "negative": 0,
        "neutral": 0,
        "mixed": 0,
    }


def test_unreadable_documents_are_skipped() -> None:
    out = aggregate([b"{", b"[]", doc("mixed", ["x"])], k=2, total=3)
    assert out["conversations"] == 1 and out["tones"]["mixed"] == 1
