"""Every regular expression in ``app/`` runs in linear time on adversarial text.

Python's ``re`` backtracks and holds the interpreter lock meanwhile, so one crafted line
(47 dots once froze the service for minutes) stops every request. ``app.core.patterns``
records every pattern compiled in ``app/``; here each one is run with ``search``,
``match``, ``fullmatch`` and ``finditer`` over long runs of every kind of character the
patterns look for, and of short fragments repeated (``a.``, ``1.``, ``. ``, ``\\t``,
``: ``, ``@a.``, …), each ending in a character that makes the match fail at the very end,
which is where backtracking patterns blow up. A linear pattern takes a few milliseconds
per run; a quadratic one takes seconds at this length, an exponential one forever.

A second test reads the source of ``app/`` so a pattern compiled or applied through
``re`` directly, bypassing the registry (and so this test), fails CI.
"""

from __future__ import annotations

import ast
import importlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core import patterns

APP = Path(__file__).resolve().parents[2] / "app"

# Importing every module that compiles patterns fills the registry.
_MODULES = sorted(
    ".".join(path.relative_to(APP.parent).with_suffix("").parts)
    for path in APP.rglob("*.py")
    if "migrations" not in path.parts and "patterns.compile(" in path.read_text("utf-8")
)
for _name in _MODULES:
    importlib.import_module(_name)
REGISTERED = patterns.registered()

# Each input is run twice: every input at SCREEN characters, where a linear pattern takes
# well under a millisecond and a quadratic one already takes 100 times longer; then the
# slowest few for each pattern at LENGTH characters, under BOUND. A linear pattern needs
# a few milliseconds there (tens on a loaded machine); a quadratic one over 100,000
# characters needs seconds, an exponential one never finishes.
SCREEN = 4_000
LENGTH = 100_000
BOUND = 1.0
RECHECK = 4

# One character of each class the patterns match, and fragments that make a pattern's
# pieces line up over and over again.
CHARACTERS = [
    *"aAzZ019_.,;: \t\n\r\x0b\x0c[](){}<>`~-+*/\\#@$%^&|!?='\"",
    *("é", "ß", "Ω", "٣", "一", "\u00a0", "\u200b", "\u2028", "\u3000", "０", "＝", "…"),
    *("’", "“", "•", "–", "\U0001f600", "\x00"),
]
FRAGMENTS = [
    *("a.", "1.", ". ", "a.b.", ".a", "a.1.", "a ", "A ", "Ab ", "ab ", "a1", "A1", "a_"),
    *(": ", "a:", "a: ", "A: ", "::", "a::", "1:", "12:", ":1", "\t:", " :", "a:1"),
    *("@a.", "a@", "@a", "a@a.", "a.@", "%a", "a%", "+a", "a+", "a-", "-a", "a-b."),
    *("1 ", "1-", "1,", "1.2.", "12.", "12 34 ", "123-", "0 ", "00", "+1 ", "(1)", "(12) "),
    *("1)", "1. ", "1) ", "- ", "-\n", "* ", "> ", "# ", "\n- ", "\n1. ", "•\n", "-*"),
    *("``", "`a", "`\n", "```\n", "~~~\n", "```a", "\n\n", " \n", "\n ", "a\n", "\n\t"),
    *("[1]", "[a", "[1", "1]", "[ ", "<a", "</", "<|", "|>", "< /", "<<", "[/", "＜"),
    *("a'", "'a", "a'b ", "a’", '"a', "a,", "a, ", "A, a", ",a", "a;", "a!", "? ", "?\n"),
    *("?)", ".)", ". A", ".\n", "! ", "...", "é.", "ab.", "Ab.", "A.", "e.g.", "Mr. "),
    *("Error", "a.Error", "A.Error", "Error:", "at ", "at a", "at a.", "at a:1:", "E  "),
    *("$ ", "% ", ">>> ", "a@a:", "a:\\", "C:\\", "PS C:\\", "~^", "a.py:1:", "(:1"),
    *("not ", "no ", "and ", "so ", "but ", "the ", "you ", "i ", "is ", "can you "),
    *("ignore ", "ignore the ", "as the ", "you must ", "please ", "ok, ", "and, "),
    *("why ", "what ", "what is ", "how do ", "who ", "yes ", "oh, ", "I think "),
    *("Human: ", "AI: ", "[2026-03-02 10:15] ", "2026-03-02 10:15 ", "02/03/2026, 10:15 "),
    *("http://", "://", "a://", "www.", "0x", "1e", "v1.", "::1", "a:b:", "1::", "10:15:03"),
    *("**", "__", "*a", "_a", "~~", "| ", "\\a", "＝＋", "\u200b=", "mailto:", "1 (2"),
]
# Every run ends in "\x01", which no pattern matches, so a pattern that consumed the run
# must fail at the very end; these runs also end in what a pattern waits for after them.
ENDINGS: dict[str, tuple[str, ...]] = {
    " ": (":", "?", "\n", "x"),
    "\t": (":", "\n"),
    ".": ("Error", "A", "\n"),
    "a.": ("Error", "AError", ":"),
    "1.": ("Error", " ", "\n"),
    "a": ("@", "://", ":", "."),
    "1": (".", ")", ":", " "),
    "-": ("x", "\n"),
    "`": ("a", "\n"),
    "a ": (":", "?"),
    "A, a": (".", "\n"),
    "\n": ("x", "-"),
    "a, ": ("?",),
}


CASES = [
    (unit, ending)
    for unit in dict.fromkeys((*CHARACTERS, *FRAGMENTS))
    for ending in ("\x01", *ENDINGS.get(unit, ()))
]


def _text(unit: str, ending: str, length: int) -> str:
    return unit * (length // len(unit)) + ending


def _run(pattern: re.Pattern[str], text: str) -> float:
    """Time of the calls the service makes: match (fullmatch tries at least as hard)
    and search (finditer does every search of a scan)."""
    started = time.perf_counter()
    pattern.fullmatch(text)
    for _ in pattern.finditer(text):
        pass
    return time.perf_counter() - started


SCREENING = [(case, _text(*case, SCREEN)) for case in CASES]


def _worst_cases(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """The RECHECK cases that take ``pattern`` longest at the screening length."""
    timed = [(_run(pattern, text), case) for case, text in SCREENING]
    timed.sort(key=lambda item: item[0], reverse=True)
    return [case for _, case in timed[:RECHECK]]


def test_registry_holds_the_patterns() -> None:
    # A sanity check that the import loop above reached the analysis and the parsers.
    modules = {r.module for r in REGISTERED}
    assert {"app.analysis.text", "app.analysis.privacy", "app.core.export"} <= modules
    assert "app.conversation.formats.transcript" in modules
    assert len(REGISTERED) >= 90


@pytest.mark.parametrize(
    "registered",
    REGISTERED,
    ids=[f"{r.module.removeprefix('app.')}:{i}" for i, r in enumerate(REGISTERED)],
)
def test_pattern_is_linear_on_adversarial_runs(registered: patterns.Registered) -> None:
    pattern = registered.pattern
    slow: list[str] = []
    for unit, ending in _worst_cases(pattern):
        elapsed = _run(pattern, _text(unit, ending, LENGTH))
        if elapsed > BOUND:
            slow.append(f"{unit!r} * {LENGTH // len(unit)} + {ending!r}: {elapsed:.2f}s")
    assert not slow, f"{pattern.pattern!r} is slow on: {slow}"


@pytest.mark.parametrize(
    ("pattern", "culprits"),
    [
        # Pieces of patterns this service once had (whole, some were exponential and
        # would never finish here). Possessive quantifiers alone leave the first quadratic.
        (r"\d++[.)]\s+", {"0", "1", "9"}),
        # Any run of scheme characters ("a", "a.", "www.", "0x") makes it quadratic.
        (r"[a-z][a-z0-9+.-]*://\S+", {"a", "a.", "ab.", "www.", "0x", "a-", "a-b.", "1."}),
        (r"(`+)[^`]*?\1", {"`"}),
    ],
)
def test_the_screening_finds_what_made_old_patterns_slow(pattern: str, culprits: set[str]) -> None:
    compiled = re.compile(pattern)
    worst = _worst_cases(compiled)
    assert culprits & {unit for unit, _ in worst}, worst
    # Time grows with the square of the length: four times the run takes about sixteen
    # times as long, against four for a linear pattern (LENGTH itself would take minutes).
    unit, ending = next(case for case in worst if case[0] in culprits)
    short, long = (
        min(_run(compiled, _text(unit, ending, n)) for _ in range(5))
        for n in (LENGTH // 40, LENGTH // 10)
    )
    assert long > 6 * short, (unit, short, long)


# --------------------------------------------------------------------------------------
# Nothing bypasses the registry
# --------------------------------------------------------------------------------------

_MATCHING = {"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall"}
_MATCHING |= {"finditer", "template"}
_ENGINES = {"re", "regex", "re2", "sre_compile", "_sre"}
# Modules allowed to use ``re`` directly, with the reason. Patterns on text a client or
# a conversation can supply are never listed here.
ALLOWED: dict[str, str] = {
    "app/core/patterns.py": "the registry itself",
}


def _bypasses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in _ENGINES:
            names = {alias.name for alias in node.names}
            if names & _MATCHING or "*" in names:
                found.append(f"line {node.lineno}: from {node.module} import {sorted(names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in _ENGINES - {"re"}:
                    found.append(f"line {node.lineno}: import {alias.name}")
                elif alias.name == "re" and alias.asname not in (None, "re"):
                    found.append(f"line {node.lineno}: import re as {alias.asname}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in _ENGINES
            and node.attr in _MATCHING
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and _is_name(node.func, "__import__", "import_module"):
            found.append(f"line {node.lineno}: dynamic import")
    return found


def _is_name(node: ast.expr, *names: str) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    return isinstance(node, ast.Attribute) and node.attr in names


def test_no_pattern_bypasses_the_registry() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP.parent).as_posix()
        if "migrations" in path.parts or rel in ALLOWED:
            continue
        found = _bypasses(path)
        if found:
            offenders[rel] = found
    assert not offenders, (
        "compile patterns with app.core.patterns.compile so the worst-case test covers "
        f"them: {offenders}"
    )


def test_the_scan_catches_a_bypass(tmp_path: Path) -> None:
    probe: Callable[[str], list[str]] = lambda source: _bypasses(  # noqa: E731
        _write(tmp_path / "probe.py", source)
    )
    assert probe("import re\nX = re.compile('a+')\n")
    assert probe("import re\ndef f(s):\n    return re.sub('a', 'b', s)\n")
    assert probe("from re import search\n")
    assert probe("import re as regexp\n")
    assert probe("import regex\n")
    assert probe("import re\nf = re.findall\n")
    assert not probe("import re\nfrom app.core import patterns\nX = patterns.compile('a')\n")
    assert not probe("import re\nF = re.IGNORECASE\ndef f(m: re.Match[str]) -> None: ...\n")


def _write(path: Path, source: str) -> Path:
    path.write_text(source, "utf-8")
    return path
