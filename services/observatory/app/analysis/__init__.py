"""The local analysis: pure, deterministic functions over a ``Conversation``.

``from app.analysis import analyze`` is the one entry point used by the API, the worker
and the CLI.
"""

from app.analysis.engine import PATTERN_TYPES, AnalysisOptions, analyze, masked_transcript

__all__ = ["PATTERN_TYPES", "AnalysisOptions", "analyze", "masked_transcript"]
