"""The one place regular expressions are compiled.

Python's ``re`` backtracks, and it holds the interpreter lock while it does: one crafted
line that sends a pattern into exponential (or, over a 200,000-character message, merely
quadratic) backtracking stops every thread of the process. So every pattern the service
applies to text it did not write itself is compiled through :func:`compile`, which
records it, and ``tests/unit/test_patterns.py`` runs every recorded pattern over long
adversarial runs (dots, digits, word characters, tabs, colons, brackets, backticks, …)
with a time bound. A test also fails when code in ``app/`` calls ``re.compile``,
``re.search`` or any other matching function of ``re`` directly.

Patterns stay in Python's own engine: measured on this service's workload, RE2's Python
binding costs about 2.7 µs per call on short strings against 0.45 µs for ``re``, and
``findall`` with many matches is over thirty times slower, which would double the time
of the local analysis. Linear time comes from the patterns themselves instead: every
repetition whose end the engine could otherwise move back and forth is possessive
(``*+``, ``++``, ``{m,n}+``) or atomic (``(?>…)``), or is bounded by what follows it,
and that is what the worst-case test checks.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

__all__ = ["Registered", "compile", "registered"]


@dataclass(frozen=True, slots=True)
class Registered:
    """A compiled pattern and the module that compiled it."""

    pattern: re.Pattern[str]
    module: str


_REGISTRY: dict[tuple[str, int], Registered] = {}


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``patterns.compile(pattern, flags)``, recorded for the worst-case test."""
    compiled = re.compile(pattern, flags)
    key = (compiled.pattern, compiled.flags)
    if key not in _REGISTRY:
        caller = sys._getframe(1).f_globals.get("__name__", "?")
        _REGISTRY[key] = Registered(compiled, str(caller))
    return compiled


def registered() -> tuple[Registered, ...]:
    """Every pattern compiled so far, in the order first compiled."""
    return tuple(_REGISTRY.values())
