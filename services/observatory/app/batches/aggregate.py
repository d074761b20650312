"""What a finished batch says as a whole, without any single conversation's text.

Runs in a worker process over the stored results of the batch's completed analyses:

- distributions: conversation tones, dialectic pattern types (how many conversations show
  each, and how often), dynamics (messages, speakers, reciprocity, dominance, confidence);
- themes across conversations: each conversation becomes a TF-IDF vector over its topic
  keyphrases and theme keywords, restricted to terms that at least ``k`` conversations
  use; the vectors are clustered (SciPy's average-linkage hierarchical clustering on cosine
  distance) and a cluster is reported only when at least ``k`` conversations fall in it.

No excerpt, label or keyphrase of a single conversation can appear: every term shown is
shared by at least ``k`` conversations, and every distribution is a count.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from scipy.cluster.hierarchy import fcluster, linkage  # type: ignore[import-untyped]

TONES = ("positive", "negative", "neutral", "mixed")
# Cosine distance under which two conversations' theme vectors belong to one cluster.
CLUSTER_DISTANCE = 0.75
TERMS_PER_THEME = 4
PHRASE_WORD_WEIGHT = 0.8
MAX_THEMES = 20


def aggregate(documents: Sequence[bytes], k: int, total: int) -> dict[str, Any]:
    """The aggregate of a batch of ``total`` items from the result ``documents`` (JSON bytes)
    of its completed analyses; ``k``: the fewest conversations a theme must gather."""
    docs = [d for d in (_load(raw) for raw in documents) if d is not None]
    return {
        "conversations": len(docs),
        "items": total,
        "k": k,
        "tones": _tones(docs),
        "pattern_types": _pattern_types(docs),
        "dynamics": _dynamics(docs),
        "themes": _themes(docs, k),
    }


def _load(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _patterns(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    patterns = doc.get("patterns")
    return patterns if isinstance(patterns, Mapping) else {}


def _tones(docs: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter({tone: 0 for tone in TONES})
    for doc in docs:
        sentiment = _patterns(doc).get("sentiment")
        tone = sentiment.get("overall_tone") if isinstance(sentiment, Mapping) else None
        counts[tone if tone in TONES else "unknown"] += 1
    if not counts["unknown"]:
        del counts["unknown"]
    return dict(counts)


def _pattern_types(docs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    conversations: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    for doc in docs:
        dialectic = _patterns(doc).get("dialectic")
        kinds = [
            f["type"]
            for f in (dialectic if isinstance(dialectic, list) else [])
            if isinstance(f, Mapping) and isinstance(f.get("type"), str)
        ]
        findings.update(kinds)
        conversations.update(set(kinds))
    return {
        kind: {"conversations": conversations[kind], "findings": findings[kind]}
        for kind in sorted(findings, key=lambda t: (-conversations[t], t))
    }


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 4),
        "median": round(statistics.median(ordered), 4),
        "p10": round(ordered[int(0.1 * (len(ordered) - 1))], 4),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _dynamics(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    series: dict[str, list[float]] = {
        "messages": [],
        "speakers": [],
        "reciprocity": [],
        "dominant_share": [],
        "confidence": [],
    }
    engagement: Counter[str] = Counter()
    for doc in docs:
        dynamics = _patterns(doc).get("dynamics")
        if isinstance(dynamics, Mapping):
            speakers = dynamics.get("speakers")
            dominance = dynamics.get("dominance")
            for name, value in (
                ("messages", dynamics.get("total_turns")),
                ("speakers", len(speakers) if isinstance(speakers, Mapping) else None),
                ("reciprocity", dynamics.get("reciprocity_score")),
                (
                    "dominant_share",
                    dominance.get("share") if isinstance(dominance, Mapping) else None,
                ),
            ):
                number = _number(value)
                if number is not None:
                    series[name].append(number)
        confidence = _number(doc.get("confidence_score"))
        if confidence is not None:
            series["confidence"].append(confidence)
        sentiment = _patterns(doc).get("sentiment")
        level = sentiment.get("engagement_level") if isinstance(sentiment, Mapping) else None
        if isinstance(level, str) and level in ("low", "medium", "high"):
            engagement[level] += 1
    out: dict[str, Any] = {name: _summary(values) for name, values in series.items()}
    out["engagement"] = dict(engagement)
    return out


def _terms(doc: Mapping[str, Any]) -> dict[str, float]:
    """A conversation's theme terms with weights: topic keyphrases (their scores) and the
    keywords of its themes."""
    weights: dict[str, float] = {}
    topics = _patterns(doc).get("topics")
    phrases = topics.get("keyphrases") if isinstance(topics, Mapping) else None
    for item in phrases if isinstance(phrases, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("phrase"), str):
            score = _number(item.get("score")) or 0.0
            term = item["phrase"].strip().lower()[:64]
            if term:
                weights[term] = max(weights.get(term, 0.0), score)
            # The words of a phrase count on their own too ("sourdough starter" and
            # "sourdough loaf" share "sourdough").
            for word in term.split() if " " in term else ():
                if len(word) >= 3:
                    weights[word] = max(weights.get(word, 0.0), score * PHRASE_WORD_WEIGHT)
    themes = doc.get("themes")
    for theme in themes if isinstance(themes, list) else []:
        keywords = theme.get("keywords") if isinstance(theme, Mapping) else None
        for word in keywords if isinstance(keywords, list) else []:
            if isinstance(word, str) and word.strip():
                term = word.strip().lower()[:64]
                weights[term] = max(weights.get(term, 0.0), 0.05)
    return weights


def _themes(docs: Sequence[Mapping[str, Any]], k: int) -> list[dict[str, Any]]:
    per_doc = [_terms(doc) for doc in docs]
    frequency: Counter[str] = Counter(term for terms in per_doc for term in terms)
    vocabulary = sorted(term for term, n in frequency.items() if n >= k)
    if len(docs) < k or not vocabulary:
        return []
    column = {term: i for i, term in enumerate(vocabulary)}
    matrix = np.zeros((len(docs), len(vocabulary)))
    for row, terms in enumerate(per_doc):
        for term, weight in terms.items():
            if term in column:
                matrix[row, column[term]] = weight
    idf = np.log((1 + len(docs)) / (1 + np.array([frequency[t] for t in vocabulary]))) + 1
    matrix *= idf
    norms = np.linalg.norm(matrix, axis=1)
    present = np.flatnonzero(norms > 0)
    if len(present) < k:
        return []
    vectors = matrix[present] / norms[present, None]
    if len(present) == 1:
        labels = np.array([1])
    else:
        tree = linkage(vectors, method="average", metric="cosine")
        labels = fcluster(tree, t=CLUSTER_DISTANCE, criterion="distance")
    themes: list[dict[str, Any]] = []
    for cluster in np.unique(labels):
        members = present[labels == cluster]
        if len(members) < k:
            continue
        weight = matrix[members].sum(axis=0)
        # A term names the cluster only if at least k of its conversations use it.
        shared = (matrix[members] > 0).sum(axis=0)
        order = [i for i in np.argsort(-weight) if shared[i] >= k and weight[i] > 0]
        if not order:
            continue
        names = [vocabulary[i] for i in order[:TERMS_PER_THEME]]
        themes.append(
            {
                "label": ", ".join(names),
                "terms": names,
                "conversations": len(members),
                "share": round(len(members) / len(docs), 4),
            }
        )
    themes.sort(key=lambda t: (-t["conversations"], t["label"]))
    return themes[:MAX_THEMES]
