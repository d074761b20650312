"""Fits the reply model (app/analysis/reply_model.py) on the quality set's development part.

    uv run python benchmarks/train_reply_model.py            # cross-validate and report
    uv run python benchmarks/train_reply_model.py --write    # also write reply_model.json

Every reply that has a target (the latest of the last three messages by someone else, as
the phrase cues use) is one example; its labels are whether the writer listed it among
the conversation's ``disagreements`` and ``agreements``. The phrase cues' own findings are
features, so the model learns how far to trust them. Two logistic regressions over the
dense features and the word features (kept when they occur in at least MIN_COUNT
replies) are fitted by L-BFGS (scipy, from zeros: deterministic), with an L2 penalty of
WORD_L2 on words and OTHER_L2 on the rest (the bias is not shrunk). Five-fold
cross-validation over conversations (fold = SHA-256 of the name, mod 5) reports the F1
of the cues alone, of cues or model at the module's thresholds (disagreement only in an
argument, as the service looks for it), and at the threshold that would maximise it.
The thresholds themselves are a decision kept in the module (decision 0016): set above
that maximum so ordinary conversations (tests/fixtures/eval) gain no spurious reactions.
Only ``dev/`` is read: the blind part never trains or tunes anything.

``benchmarks/crossfit.py`` scores the development part as the service reads it, with
every conversation analysed by both models fitted on the other folds (the shipped weights
have seen every development conversation, so ``benchmarks/evaluate.py`` on ``dev/`` is
in-sample).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix, hstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis import reply_model
from app.analysis.dialectic import _reactions, _target, read_turns, reply_reader
from app.core.cancellation import NEVER
from benchmarks.evaluate import FOLDS, QUALITY_DIR, folds, load_fixtures, parse_fixture
from benchmarks.train_tone_model import CONVERGED

MIN_COUNT = 3
WORD_L2 = 10.0
OTHER_L2 = 1.0
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
PRUNE_BELOW = 1e-3
DIGITS = 4
CUE_COLUMN = {"disagreement": 1, "agreement": 2}


@dataclass
class Examples:
    dense: np.ndarray  # replies × FEATURES
    words: list[set[str]]  # per reply, its word features
    labels: dict[str, np.ndarray]  # per kind, 1.0 where the writer listed the reply
    names: list[str]  # per reply, its conversation


def examples(directory: Path) -> Examples:
    rows: list[list[float]] = []
    words: list[set[str]] = []
    labels: dict[str, list[float]] = {kind: [] for kind in reply_model.KINDS}
    names: list[str] = []
    for fixture in load_fixtures(directory):
        turns = read_turns(parse_fixture(fixture))
        listed = {
            "disagreement": set(fixture.labels["disagreements"]),
            "agreement": set(fixture.labels["agreements"]),
        }
        reader = reply_reader(turns, _reactions(turns, NEVER))
        for position, turn in enumerate(turns):
            target = _target(turns, position)
            if target is None:
                continue
            rows.append(reader.features(position, target))
            words.append(reader.words(position, target))
            for kind in reply_model.KINDS:
                labels[kind].append(float(turn.index in listed[kind]))
            names.append(fixture.name)
    return Examples(np.array(rows), words, {k: np.array(v) for k, v in labels.items()}, names)


def vocabulary(words: list[set[str]]) -> list[str]:
    counts = Counter(name for found in words for name in found)
    return sorted(name for name, count in counts.items() if count >= MIN_COUNT)


def matrix(dense: np.ndarray, words: list[set[str]], vocab: list[str]) -> csr_matrix:
    column = {name: j for j, name in enumerate(vocab)}
    r: list[int] = []
    c: list[int] = []
    for i, found in enumerate(words):
        for name in found:
            j = column.get(name)
            if j is not None:
                r.append(i)
                c.append(j)
    sparse = csr_matrix((np.ones(len(r)), (r, c)), shape=(len(words), len(vocab)))
    return hstack([csr_matrix(dense), sparse]).tocsr()


def fit(x: csr_matrix, y: np.ndarray, dense_count: int) -> np.ndarray:
    """Weights, the dense ones first (the bias is the first dense feature)."""
    penalty = np.r_[
        0.0, np.full(dense_count - 1, OTHER_L2), np.full(x.shape[1] - dense_count, WORD_L2)
    ]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
        value = -float(np.sum(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        value += 0.5 * float(np.sum(penalty * w * w))
        return value, np.asarray(x.T @ (p - y)).ravel() + penalty * w

    found = minimize(
        loss,
        np.zeros(x.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options=CONVERGED,
    )
    weights: np.ndarray = found.x
    return weights


def f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = float(((predicted == 1) & (truth == 1)).sum())
    fp = float(((predicted == 1) & (truth == 0)).sum())
    fn = float(((predicted == 0) & (truth == 1)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def cross_validate(data: Examples, kind: str) -> np.ndarray:
    """Out-of-fold probabilities."""
    fold = folds(data.names)
    y = data.labels[kind]
    out = np.zeros(len(y))
    dense_count = data.dense.shape[1]
    for k in range(FOLDS):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        vocab = vocabulary([data.words[i] for i in train])
        w = fit(
            matrix(data.dense[train], [data.words[i] for i in train], vocab), y[train], dense_count
        )
        x = matrix(data.dense[test], [data.words[i] for i in test], vocab)
        out[test] = 1.0 / (1.0 + np.exp(-(x @ w)))
    return out


def in_argument(data: Examples, against: np.ndarray) -> np.ndarray:
    """Per reply, whether its conversation is one where the service looks for
    disagreement: the cues found one, or the model gives at least ARGUMENT_REPLIES replies
    ARGUMENT_FROM or more."""
    argued = data.dense[:, reply_model.FEATURES.index("argued")] > 0
    sure: Counter[str] = Counter()
    for name, p, cued in zip(
        data.names, against, data.dense[:, CUE_COLUMN["disagreement"]], strict=True
    ):
        sure[name] += int(p >= reply_model.ARGUMENT_FROM and not cued)
    many = np.array([sure[n] >= reply_model.ARGUMENT_REPLIES for n in data.names])
    result: np.ndarray = argued | many
    return result


def predictions(
    data: Examples, kind: str, held_out: np.ndarray, threshold: float, gate: np.ndarray
) -> np.ndarray:
    cues = data.dense[:, CUE_COLUMN[kind]]
    return np.maximum(((held_out >= threshold) & gate).astype(float), cues)


def weights_document(data: Examples) -> tuple[dict[str, object], dict[str, float]]:
    """The weights document fitted on all of ``data`` and its cross-validated figures."""
    document: dict[str, object] = {"features": list(reply_model.FEATURES)}
    figures: dict[str, float] = {}
    vocab = vocabulary(data.words)
    x = matrix(data.dense, data.words, vocab)
    dense_count = data.dense.shape[1]
    held: dict[str, np.ndarray] = {kind: cross_validate(data, kind) for kind in reply_model.KINDS}
    gates = {
        "disagreement": in_argument(data, held["disagreement"]),
        "agreement": np.ones(len(data.names), dtype=bool),
    }
    for kind, used in (
        ("disagreement", reply_model.DISAGREEMENT_FROM),
        ("agreement", reply_model.AGREEMENT_FROM),
    ):
        y = data.labels[kind]
        figures[f"{kind}_labelled"] = int(y.sum())
        figures[f"{kind}_cues_f1"] = round(f1(data.dense[:, CUE_COLUMN[kind]], y), 4)
        figures[f"{kind}_f1_cross_validated"] = round(
            f1(predictions(data, kind, held[kind], used, gates[kind]), y), 4
        )
        by_threshold = {
            t: round(f1(predictions(data, kind, held[kind], t, gates[kind]), y), 4)
            for t in THRESHOLDS
        }
        best = max(THRESHOLDS, key=lambda t: (by_threshold[t], -t))
        figures[f"{kind}_f1_by_threshold"] = by_threshold  # type: ignore[assignment]
        figures[f"{kind}_best_threshold"] = best
        figures[f"{kind}_f1_at_best_threshold"] = by_threshold[best]
        w = fit(x, y, dense_count)
        document[kind] = {
            "dense": [round(float(v), DIGITS) for v in w[:dense_count]],
            "words": {
                name: round(float(v), DIGITS)
                for name, v in zip(vocab, w[dense_count:], strict=True)
                if abs(float(v)) >= PRUNE_BELOW
            },
        }
    figures["conversations"] = len(set(data.names))
    figures["replies"] = len(data.names)
    return document, figures


def fitted_document(data: Examples, keep: np.ndarray) -> dict[str, object]:
    """A weights document fitted on the replies where ``keep`` holds (no pruning)."""
    words = [w for w, k in zip(data.words, keep, strict=True) if k]
    vocab = vocabulary(words)
    x = matrix(data.dense[keep], words, vocab)
    dense_count = data.dense.shape[1]
    document: dict[str, object] = {"features": list(reply_model.FEATURES)}
    for kind in reply_model.KINDS:
        w = fit(x, data.labels[kind][keep], dense_count)
        document[kind] = {
            "dense": w[:dense_count].tolist(),
            "words": dict(zip(vocab, w[dense_count:].tolist(), strict=True)),
        }
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write reply_model.json")
    args = parser.parse_args(argv)
    data = examples(QUALITY_DIR / "dev")
    document, figures = weights_document(data)
    for key, value in figures.items():
        print(f"{key}: {value}")
    for kind in reply_model.KINDS:
        print(f"{kind}: {len(document[kind]['words'])} weighted words")  # type: ignore[index]
    if args.write:
        reply_model.WEIGHTS_FILE.write_text(
            json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n",
            encoding="utf-8",
        )
        print(f"written to {reply_model.WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
