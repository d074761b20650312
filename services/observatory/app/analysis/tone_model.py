"""A small trained model of a message's tone, read on top of the lexicon rules.

The rules of ``sentiment`` (VADER's lexicon with phrase cues for complaints, sarcasm,
hostility, warmth) miss what people write without a telling word: a complaint told as
facts, thanks inside a request, a topic word that sounds bad ("cancer screening"). A
multinomial logistic regression reads, for each message, the rules' own score and the
kinds of cue they found, a few surface features (role, "!", "?", length, the
neighbours' rule scores) and the words and word pairs of its prose, and
weighs them into three probabilities: negative, neutral, positive. The message's tone
score is then P(positive) − P(negative), in [−1, 1], labelled with the same ±0.15
thresholds as before, so a trajectory point keeps its meaning.

Its weights were fitted on the quality set's development part by
``benchmarks/train_tone_model.py`` (decision 0017), which also picks the two class offsets
by five-fold cross-validation over conversations, and are kept in ``tone_model.json``
beside this module. Deterministic: the weights are constants, the features plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from app.analysis.text import plain_apostrophes
from app.analysis.weights_file import read_weights
from app.core import patterns

CLASSES = ("negative", "neutral", "positive")
WEIGHTS_FILE = Path(__file__).with_name("tone_model.json")

# Words (letters, with one inner apostrophe) and emoji; "!" and "?" are dense features.
_TOKEN = patterns.compile(r"[^\W\d_]++(?:'[^\W\d_]++)?+|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_WORDS_CAP = 40  # length is read up to this many words
_WORD = "w "  # feature-name prefixes: a word, a pair of words
_PAIR = "p "
_MAX_TOKENS = 400  # words read per message
# Pronouns, articles and the commonest verbs and prepositions carry no tone of their own;
# alone, a few thousand examples give them weights by chance ("you're" leaning positive
# from "you're a star"). They still count inside word pairs ("you're wrong").
_FUNCTION_WORDS_TEXT = (
    "you you're your yours you've you'll you'd i i'm i've i'll i'd me my mine we we're we've "
    "we'll our ours us he he's she she's they they're they've them their his her him it it's "
    "its this that that's these those there there's here the a an and or of to in on at for "
    "with from by as about into over than then so if is are was were be been being am do "
    "does did have has had will would can could shall should may might must get got what "
    "when where who how which some any all just also"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())


@dataclass(frozen=True, slots=True)
class MessageView:
    """What the model reads of one message: its prose (own text, code and quotes left
    out), its role, the rules' score (None when it has no prose) and label, and the kinds
    of the cues the rules found ("sarcasm", "negative word", …)."""

    prose: str
    role: str
    score: float | None
    rule_label: str
    cue_kinds: tuple[str, ...]


def tokens(prose: str) -> list[str]:
    head = plain_apostrophes(prose[: 20 * _MAX_TOKENS].lower())
    return _TOKEN.findall(head)[:_MAX_TOKENS]


def _dense_features(views: Sequence[MessageView], i: int, words: list[str]) -> dict[str, float]:
    view = views[i]
    s = view.score or 0.0
    prev = views[i - 1].score or 0.0 if i > 0 else 0.0
    nxt = views[i + 1].score or 0.0 if i + 1 < len(views) else 0.0
    text = view.prose
    length = min(len(words), _WORDS_CAP)
    found: dict[str, float] = {
        "score": s,
        "score+": max(s, 0.0),
        "score-": min(s, 0.0),
        "|score|": abs(s),
        f"rules {view.rule_label}": 1.0,
        f"role {view.role}": 1.0,
        "exclamation": float("!" in text),
        "exclamations": min(text.count("!"), 3) / 3,
        "question": float("?" in text),
        "length": length / _WORDS_CAP,
        "short": float(length <= 3),
        "previous score": prev,
        "next score": nxt,
    }
    for kind in view.cue_kinds:
        name = f"cue {kind}"
        found[name] = found.get(name, 0.0) + 1.0
    return found


def features(views: Sequence[MessageView], i: int) -> dict[str, float]:
    """The features of message ``i`` of a conversation, by name: the dense ones (the
    rules' score and label, role, "!", "?", length, the neighbours' rule scores, the cue
    kinds) and, with the value 1, its words (function words left out) and word pairs."""
    words = tokens(views[i].prose)
    found = _dense_features(views, i, words)
    for word in words:
        if word not in _FUNCTION_WORDS:
            found[_WORD + word] = 1.0
    for a, b in pairwise(words):
        found[f"{_PAIR}{a} {b}"] = 1.0
    return found


# Fitted weights stay within a few units; one beyond this (or not a number) is a broken file.
MAX_WEIGHT = 1000.0


@dataclass(frozen=True, slots=True)
class Weights:
    """The fitted weights: per feature one weight per class of CLASSES, with word and
    word-pair features as rows of ``matrix`` looked up by word (``words``) or by first
    and second word (``pairs``), the others by name (``dense``)."""

    bias: tuple[float, float, float]
    offsets: tuple[float, float, float]
    dense: dict[str, tuple[float, float, float]]
    words: dict[str, int]
    pairs: dict[str, dict[str, int]]
    matrix: np.ndarray
    names: list[str]  # per row: the word, or the two words of the pair
    lean: np.ndarray  # per row: its weight for positive less its weight for negative


@cache
def weights() -> Weights:
    """The fitted weights. A file that is missing, unreadable, fitted on other classes,
    without the rules' score or holding a weight that is not a number within ±MAX_WEIGHT is
    refused with a ValueError that names it."""
    raw, retrain = read_weights(WEIGHTS_FILE, "train_tone_model.py", "classes", list(CLASSES))
    try:
        found = _weights(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable ({exc!r}); {retrain}") from exc
    if "score" not in found.dense:
        raise ValueError(f"no weight for the rules' score; {retrain}")
    values = [*found.bias, *found.offsets, *(w for row in found.dense.values() for w in row)]
    if not (np.abs(values) <= MAX_WEIGHT).all() or not (np.abs(found.matrix) <= MAX_WEIGHT).all():
        raise ValueError(f"a weight is not a number within ±{MAX_WEIGHT:g}; {retrain}")
    return found


def _weights(raw: dict[str, Any]) -> Weights:
    dense: dict[str, tuple[float, float, float]] = {}
    words: dict[str, int] = {}
    pairs: dict[str, dict[str, int]] = {}
    rows: list[list[float]] = []
    names: list[str] = []
    for name, w in raw["weights"].items():
        if len(w) != len(CLASSES):
            raise ValueError(f"{name!r} has {len(w)} weights, not {len(CLASSES)}")
        if name.startswith(_WORD):
            words[name[len(_WORD) :]] = len(rows)
        elif name.startswith(_PAIR):
            first, _, second = name[len(_PAIR) :].partition(" ")
            pairs.setdefault(first, {})[second] = len(rows)
        else:
            dense[name] = (float(w[0]), float(w[1]), float(w[2]))
            continue
        rows.append([float(v) for v in w])
        names.append(name[len(_WORD) :])
    matrix = np.array(rows, dtype=float).reshape(-1, len(CLASSES))
    bias = tuple(float(v) for v in raw["bias"])
    offsets = tuple(float(v) for v in raw["offsets"])
    if len(bias) != len(CLASSES) or len(offsets) != len(CLASSES):
        raise ValueError("bias and offsets need one value per class")
    return Weights(
        bias=(bias[0], bias[1], bias[2]),
        offsets=(offsets[0], offsets[1], offsets[2]),
        dense=dense,
        words=words,
        pairs=pairs,
        matrix=matrix,
        names=names,
        lean=matrix[:, 2] - matrix[:, 0],
    )


def scores(views: Sequence[MessageView], model: Weights | None = None) -> list[float | None]:
    """Each message's score P(positive) − P(negative) in [−1, 1] (None for a message
    without a rules' score), for all messages at once: the dense features in Python, the
    words and word pairs gathered and summed by numpy."""
    model = model or weights()
    words, pairs = model.words, model.pairs
    rows: list[int] = []
    starts: list[int] = []
    dense = np.zeros((len(views), len(CLASSES)))
    for i, view in enumerate(views):
        starts.append(len(rows))
        if view.score is None:
            continue
        found = tokens(view.prose)
        total = list(model.bias)
        for name, value in _dense_features(views, i, found).items():
            w = model.dense.get(name)
            if w is not None:
                total[0] += w[0] * value
                total[1] += w[1] * value
                total[2] += w[2] * value
        dense[i] = total
        rows.extend(_rows(found, words, pairs))
    sparse = np.zeros((len(views), len(CLASSES)))
    if rows:
        # A zero row at the end keeps every start a valid index; reduceat gives an empty
        # segment the row at its start, so those are masked.
        gathered = np.vstack([model.matrix[np.asarray(rows)], np.zeros((1, len(CLASSES)))])
        bounds = np.asarray(starts)
        ends = np.append(bounds[1:], len(rows))
        sums = np.add.reduceat(gathered, bounds, axis=0)
        sparse = np.where((ends > bounds)[:, None], sums, 0.0)
    values = polarity(dense + sparse + np.asarray(model.offsets)).tolist()
    return [None if v.score is None else values[i] for i, v in enumerate(views)]


def polarity(class_scores: np.ndarray) -> np.ndarray:
    """P(positive) − P(negative) of each row of class scores (softmax over CLASSES)."""
    z = class_scores - class_scores.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    result: np.ndarray = p[:, 2] - p[:, 0]
    return result


def _rows(found: list[str], words: dict[str, int], pairs: dict[str, dict[str, int]]) -> set[int]:
    """The matrix rows of the words and word pairs among ``found`` tokens."""
    rows = {words[t] for t in found if t in words}
    rows.update(pairs[a].get(b, -1) for a, b in pairwise(found) if a in pairs)
    rows.discard(-1)
    return rows


def explain(
    views: Sequence[MessageView], i: int, side: float, model: Weights | None = None
) -> tuple[str, ...]:
    """The words or word pairs of message ``i`` that moved it most towards ``side`` (the
    sign of its score), strongest first: up to _NAMED, each moving the log-odds of that
    side against the other by at least _NAMED_FROM."""
    model = model or weights()
    rows = sorted(_rows(tokens(views[i].prose), model.words, model.pairs))
    pushes = [
        (float(model.lean[r]) * side, model.names[r])
        for r in rows
        if float(model.lean[r]) * side > _NAMED_FROM
    ]
    pushes.sort(key=lambda p: (-p[0], p[1]))
    return tuple(name for _, name in pushes[:_NAMED])


# Up to this many words are named for a message whose label the model changed, each
# moving the log-odds of its side against the other by at least this much.
_NAMED = 2
_NAMED_FROM = 1.0
