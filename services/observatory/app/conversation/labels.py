"""Line labels: words that open a line inside a message ("Note: …", "Error: …", "Step 2:")
far more often than they name a person or a subject.

The transcript parser starts a message at such a line only when the label is already a
speaker; topic segmentation never takes one for an agenda heading.
"""

from __future__ import annotations

from app.core import patterns

_LABEL_TEXT = """
    note, notes, nb, n.b, ps, p.s, pps, tip, tips, hint, hints, warning, warnings, warn,
    caution, attention, important, info, information, debug, trace, fatal, critical, error,
    errors, exception, traceback, example, examples, e.g, i.e, output, input, result,
    results, return, returns, yields, raises, args, arguments, parameters, params,
    attributes, usage, syntax, answer, question, solution, problem, fix, todo, summary,
    update, edit, source, sources, reference, references, see, see also, key, value, name,
    type, description, status, reason, cause, definition, expected, actual, step, steps,
    pros, cons, advantages, disadvantages, option, options, title, subject, date, time,
    from, to, cc, bcc, re, fwd, email, e-mail, phone, tel, mobile, address, url, link,
    location, price, cost, total, score, rating, verdict, conclusion, background, context,
    goal, goals, objective, requirements, constraints, assumption, assumptions,
    explanation, observation, hypothesis, premise, thesis, antithesis, synthesis, claim,
    evidence, counterpoint, rebuttal, quote, translation, meaning, instructions,
    ingredients, method, approach, idea, ideas, benefit, benefits, risk, risks, impact,
    why, how, what, when, where, who, which, yes, no, ok, okay, correction, clarification,
    disclaimer, caveat, bonus, version, host, accept, authorization, cookie, content-type,
    content-length, user-agent, set-cookie, cache-control, command, commands, response,
    request, query, prompt, correct, incorrect, true, false, short answer, long answer,
    final answer, tl;dr, edit 2, side note, fun fact, key point, key points, next steps,
    log, logs, stack trace, root cause, readme, code, reply, issue
"""
LABELS = frozenset(word.strip() for word in _LABEL_TEXT.split(","))
_NUMBERED_LABEL = patterns.compile(
    r"(?:step|option|part|phase|chapter|section|example|case|rule|item|point|question|"
    r"answer|q|a|figure|fig|table|line|task|test|stage|level|day|week|version|v|note)"
    r" ?\d+[a-z]?"
)
_LABEL_SUFFIXES = ("error", "exception", "warning")


def is_line_label(key: str) -> bool:
    """Whether ``key`` (lower-cased, without its colon) is a line label: a listed word or
    phrase, a numbered one ("step 2", "q3"), or a dotted name ending in one ("app.ERROR",
    "db.TimeoutError")."""
    if key in LABELS or _NUMBERED_LABEL.fullmatch(key):
        return True
    last = key.rsplit(".", 1)[-1]
    return last in LABELS or last.endswith(_LABEL_SUFFIXES)
