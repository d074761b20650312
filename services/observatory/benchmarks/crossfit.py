"""Scores the quality set's development part as the service reads it, cross-fitted.

    uv run python benchmarks/crossfit.py              # every quality metric on dev
    uv run python benchmarks/crossfit.py --verbose    # and the per-conversation misses

Both trained models (the tone model and the reply model) are fitted on dev, so
``benchmarks/evaluate.py`` on ``dev/`` is in-sample for everything built on them: tone,
shifts, conversation tone, disagreement, agreement and the structures. Here each of the
five folds (fold = SHA-256 of the conversation's name, mod 5, as both trainers use) is
analysed with both models fitted on the other four folds; the tone model keeps the
shipped class offsets (three numbers picked on cross-validated predictions). These are
the figures to study and tune on: they track the blind part (decision 0016), which is
run only to report. The fitted weights are cached under ``--cache`` by a digest of the
dev conversations, the trainers and the analysis code (the features are built from the
rules' readings), so only a rerun with none of them changed skips the fitting.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import sys
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis import reply_model, tone_model
from benchmarks import evaluate, train_reply_model, train_tone_model
from benchmarks.evaluate import FOLDS, QUALITY_DIR, folds

DEFAULT_CACHE = Path(tempfile.gettempdir()) / f"observatory-crossfit-{getpass.getuser()}"
_COMPLETE = "complete"  # written last: a folder without it was interrupted


def _digest(directory: Path) -> str:
    """What the fitted weights depend on: the conversations, the trainers and every module
    of the analysis (the features are built from the rules' readings)."""
    digest = hashlib.sha256()
    analysis = Path(tone_model.__file__).parent
    for path in [
        *sorted(directory.glob("*.json")),
        Path(train_tone_model.__file__),
        Path(train_reply_model.__file__),
        Path(evaluate.__file__),
        *sorted(p for p in analysis.glob("*.py") if p.name != "__init__.py"),
        *sorted(analysis.parent.glob("conversation/*.py")),
    ]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    # The fold files keep the shipped tone offsets.
    digest.update(repr(tone_model.weights().offsets).encode())
    return digest.hexdigest()[:16]


def fold_weights(directory: Path, cache: Path) -> list[tuple[Path, Path]]:
    """Per fold, the (tone, reply) weights files fitted on the other folds."""
    folder = cache / _digest(directory)
    files = [(folder / f"tone{k}.json", folder / f"reply{k}.json") for k in range(FOLDS)]
    if (folder / _COMPLETE).exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    rows, y, _, names, _ = train_tone_model.examples(directory)
    tone_fold = folds(names)
    offsets = np.array(tone_model.weights().offsets)
    data = train_reply_model.examples(directory)
    reply_fold = folds(data.names)
    for k, (tone, reply) in enumerate(files):
        vocab, w, b = train_tone_model.fit_on(rows, y, tone_fold != k)
        document = train_tone_model.weights_document(vocab, w, b, offsets)
        tone.write_text(json.dumps(document), encoding="utf-8")
        document = train_reply_model.fitted_document(data, reply_fold != k)
        reply.write_text(json.dumps(document), encoding="utf-8")
    (folder / _COMPLETE).write_text("", encoding="utf-8")
    return files


@contextmanager
def weights_of(tone: Path, reply: Path) -> Iterator[None]:
    shipped = tone_model.WEIGHTS_FILE, reply_model.WEIGHTS_FILE
    tone_model.WEIGHTS_FILE, reply_model.WEIGHTS_FILE = tone, reply
    tone_model.weights.cache_clear()
    reply_model.models.cache_clear()
    try:
        yield
    finally:
        tone_model.WEIGHTS_FILE, reply_model.WEIGHTS_FILE = shipped
        tone_model.weights.cache_clear()
        reply_model.models.cache_clear()


def crossfitted(
    directory: Path = QUALITY_DIR / "dev",
    cache: Path = DEFAULT_CACHE,
    only: Collection[str] | None = None,
) -> tuple[dict[str, float | None], dict[str, list[str]]]:
    """Every quality metric of ``directory``, each fold analysed by weights fitted on the
    others, and the per-conversation misses; with ``only``, of those conversations (file
    names without ".json") alone, the weights still fitted on all of ``directory``."""
    files = [p for p in sorted(directory.glob("*.json")) if only is None or p.stem in only]
    fold_of = dict(
        zip(
            files,
            folds([json.loads(p.read_text(encoding="utf-8"))["name"] for p in files]).tolist(),
            strict=True,
        )
    )
    parts: list[dict[str, evaluate.Counts]] = []
    misses: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for k, (tone, reply) in enumerate(fold_weights(directory, cache)):
            inside = [path for path in files if fold_of[path] == k]
            if not inside:
                continue
            part = Path(scratch) / f"dev{k}"
            part.mkdir()
            for path in inside:
                (part / path.name).symlink_to(path.resolve())
            with weights_of(tone, reply):
                found = evaluate.evaluate_part(part, keep_misses=True, resamples=1)
            if found.errors:
                raise RuntimeError(f"analysis failed: {found.errors}")
            misses.update(found.misses)
            parts.append(found.support)
    _, scores = evaluate.summed_scores(parts)
    return scores, dict(sorted(misses.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="print per-conversation misses")
    parser.add_argument("--json", action="store_true", help="print machine-readable scores")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="folder for the fitted weights"
    )
    args = parser.parse_args(argv)
    scores, misses = crossfitted(cache=args.cache)
    if args.json:
        print(json.dumps({"scores": scores, **({"misses": misses} if args.verbose else {})}))
        return 0
    for key, value in scores.items():
        shown = "-" if value is None else f"{value:.3f}"
        print(f"{evaluate.QUALITY_METRICS[key].title:<40}{shown}")
    if args.verbose:
        for name, notes in misses.items():
            print(f"\n{name}")
            for note in notes:
                print(f"  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
