"""Fits the reply model (app/analysis/reply_model.py) on the quality set's development part.

    uv run python benchmarks/train_reply_model.py            # cross-validate and print weights
    uv run python benchmarks/train_reply_model.py --write    # also write them into the module

Every reply that has a target (the latest of the last three messages by someone else, as
the phrase cues use) is one example; its labels are whether the writer listed it among
the conversation's ``disagreements`` and ``agreements``. The phrase cues' own findings are
features, so the model learns how far to trust them. Two L2-regularised logistic
regressions are fitted by Newton's method (deterministic, numpy only). Five-fold
cross-validation over conversations (fold = SHA-256 of the name, mod 5) reports the F1
of the cues alone, of cues or model at the module's thresholds, and at the threshold
that would maximise it. The thresholds themselves are a decision kept in the module
(decision 0016): set above that maximum so ordinary conversations (tests/fixtures/eval)
gain no spurious reactions. Only ``dev/`` is read: the blind part never trains or tunes
anything.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis import reply_model
from app.analysis.dialectic import _content_of, _mark_self_answers, _reactions, _read, _target
from app.core.cancellation import NEVER
from benchmarks.evaluate import QUALITY_DIR, load_fixtures, parse_fixture

L2 = 1.0
FOLDS = 5
THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
MODULE = Path(reply_model.__file__)


def examples(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Features, disagreement labels, agreement labels and conversation names."""
    rows: list[list[float]] = []
    disagree: list[float] = []
    agree: list[float] = []
    names: list[str] = []
    for fixture in load_fixtures(directory):
        conversation = parse_fixture(fixture)
        turns = [_read(m) for m in conversation.messages if m.role != "system"]
        _mark_self_answers(turns)
        position_of = {t.index: p for p, t in enumerate(turns)}
        cues = _reactions(turns, NEVER)
        disputed = {
            position_of[s["roles"]["response"]] for s in cues if s["type"] == "disagreement"
        }
        agreed = {position_of[s["roles"]["response"]] for s in cues if s["type"] == "agreement"}
        labelled_d = set(fixture.labels["disagreements"])
        labelled_a = set(fixture.labels["agreements"])
        reader = reply_model.ReplyReader(turns, disputed, agreed, _content_of)
        for position, turn in enumerate(turns):
            target = _target(turns, position)
            if target is None:
                continue
            rows.append(reader.features(position, target))
            disagree.append(float(turn.index in labelled_d))
            agree.append(float(turn.index in labelled_a))
            names.append(fixture.name)
    return np.array(rows), np.array(disagree), np.array(agree), names


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = np.zeros(x.shape[1])
    penalty = L2 * np.diag(np.r_[0.0, np.ones(x.shape[1] - 1)])  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x.T * (p * (1 - p))) @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    return w


def f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = float(((predicted == 1) & (truth == 1)).sum())
    fp = float(((predicted == 1) & (truth == 0)).sum())
    fn = float(((predicted == 0) & (truth == 1)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def cross_validate(x: np.ndarray, y: np.ndarray, names: list[str]) -> np.ndarray:
    """Out-of-fold probabilities."""
    fold = np.array([int(hashlib.sha256(n.encode()).hexdigest(), 16) % FOLDS for n in names])
    out = np.zeros(len(y))
    for k in range(FOLDS):
        w = fit(x[fold != k], y[fold != k])
        out[fold == k] = 1.0 / (1.0 + np.exp(-(x[fold == k] @ w)))
    return out


def _literal(weights: np.ndarray) -> str:
    values = [f"{v:.2f}" for v in weights.tolist()]
    half = (len(values) + 1) // 2
    return f"(\n    {', '.join(values[:half])},\n    {', '.join(values[half:])},\n)"


def write(name: str, weights: np.ndarray) -> None:
    text = MODULE.read_text(encoding="utf-8")
    text = re.sub(
        rf"^{name} = \([^)]*\)",
        lambda _: f"{name} = {_literal(weights)}",
        text,
        count=1,
        flags=re.MULTILINE,
    )
    MODULE.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the weights into the module")
    args = parser.parse_args(argv)
    x, disagree, agree, names = examples(QUALITY_DIR / "dev")
    print(f"{len(set(names))} conversations, {len(names)} replies")
    for label, y, cue_column, weights_name, threshold_name in (
        ("disagreement", disagree, 1, "DISAGREEMENT_WEIGHTS", "DISAGREEMENT_FROM"),
        ("agreement", agree, 2, "AGREEMENT_WEIGHTS", "AGREEMENT_FROM"),
    ):
        cues = x[:, cue_column]
        held_out = cross_validate(x, y, names)
        scores = {t: f1(np.maximum((held_out >= t).astype(float), cues), y) for t in THRESHOLDS}
        best = max(THRESHOLDS, key=lambda t: (round(scores[t], 3), -t))
        used = getattr(reply_model, threshold_name)
        at_used = f1(np.maximum((held_out >= used).astype(float), cues), y)
        print(
            f"{label}: {int(y.sum())} labelled; F1 (cross-validated) with the cues alone "
            f"{f1(cues, y):.3f}, cues or model {at_used:.3f} from p >= {used} "
            f"({scores[best]:.3f} at the best threshold, {best})"
        )
        weights = fit(x, y)
        print(f"  {weights_name} = {_literal(weights)}")
        if args.write:
            write(weights_name, weights)
    if args.write:
        print(f"written to {MODULE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
