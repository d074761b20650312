"""A small trained model of replies: does a message disagree with, or agree with, the
message it answers, beyond what the phrase cues of ``dialectic`` find?

People push back without saying "I disagree": a counter-fact ("Gutters were cleared in
2024"), a rebuttal that echoes the other's words ("It's soaking. You can't just scrub burnt
rice off."), a counter-offer ("920, last offer"). No single cue marks them, but together
weak signals do: the reply takes up the other's words, is a statement rather than a
question, carries negation, answers a proposal, follows an argument, is long enough to
argue, and the words it opens with ("so", "except", "which") and holds ("anyway",
"supposed"). Two logistic regressions (disagree, agree) weigh 25 dense features of the
reply and its target with the words of both: the reply's words, its first two words, its
word pairs and the target's words. Their weights were fitted on the quality set's
development part by ``benchmarks/train_reply_model.py`` (decision 0016), which also checks
them by five-fold cross-validation over conversations, and are kept in
``reply_model.json`` beside this module.

Deterministic: the weights are constants, the features plain counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from app.analysis.cues import COURTESY_OPENING, NOT_DENIED
from app.analysis.weights_file import read_weights
from app.core import patterns


class Reply(Protocol):
    """What the model reads of a message (``dialectic._Turn`` provides it)."""

    speaker: str
    role: str
    text: str
    head: str
    opening: str
    questions: tuple[str, ...]
    only_question: bool


_NEGATIONS = frozenset("not no never nothing nobody none".split())  # noqa: SIM905
_CONTRASTS = frozenset(
    [
        "but",
        "though",
        "although",
        "actually",
        "still",
        "only",
        "just",
        "even",
        "instead",
        "rather",
        "yet",
        "however",
        "whereas",
        "except",
    ]
)
_SECOND_PERSON = frozenset("you your you're yours".split())  # noqa: SIM905
_TOKEN = patterns.compile(r"[^\W\d_]++(?:'[^\W\d_]++)?+")  # letters of any script
# Read as pairs of adjacent words: a pattern search per message cost more than the rest
# of the model together.
_PROPOSAL_PAIRS = frozenset(
    {
        *(("could", "we"), ("what", "if"), ("how", "about"), ("i", "propose"), ("we", "should")),
        *(("maybe", "we"), ("don't", "we"), ("shall", "we"), ("i", "suggest")),
        *(("my", "proposal"), ("can", "do"), ("can", "offer"), ("can", "go")),
        *(("i'd", "take"), ("i'd", "offer"), ("i'd", "do")),
    }
)
_RHETORICAL_PAIRS = frozenset(
    {
        *(("why", "would"), ("who", "does"), ("who", "says"), ("who", "cares")),
        *(("since", "when"), ("you", "even"), ("you", "serious"), ("you", "kidding")),
        ("is", "that"),
    }
)
_RHETORICAL_WORDS = frozenset({"seriously", "really"})
_ACKNOWLEDGEMENT = patterns.compile(
    r"(?:ok|okay|sure|yes|yeah|yep|thanks|thank|great|perfect|fine|deal|agreed|sounds good|"
    r"good|nice|cool|love|lovely|brilliant|exactly|true|right|fair|absolutely|definitely|"
    r"totally|haha|lol)\b" + NOT_DENIED + "|👍|❤️|🙏"
)
_DIGIT = patterns.compile(r"\d")
_COURTESY = patterns.compile(COURTESY_OPENING)  # "I'm sorry to hear that", "No problem"
_HELPFUL_PAIRS = frozenset(
    {("i", "can"), ("i'll", "do"), ("i'll", "send"), ("we", "can"), ("i", "will"), ("i've", "sent")}
    | {("i'll", "check"), ("i'll", "get"), ("i'll", "take"), ("i'll", "cover"), ("we'll", "send")}
)
_REQUEST_PAIRS = frozenset(
    {("could", "you"), ("can", "you"), ("would", "you"), ("will", "you"), ("ping", "me")}
    | {("let", "me"), ("send", "me"), ("do", "you")}
)
# A reply of this many words or more is a full statement; longer ones are not more likely
# to disagree (the writers' replies are short, real forum posts and e-mails are not).
_SUBSTANTIVE_WORDS = 12

FEATURES = (
    "bias",
    "cue_disagreement",  # the phrase cues already call it a disagreement
    "cue_agreement",
    "only_question",
    "asks",
    "negation",  # negations, up to three, / 3
    "contrast",  # contrast words, up to three, / 3
    "second_person",
    "overlap",  # content words shared with the target, / the smaller set
    "target_asks",
    "target_proposes",
    "acknowledges",  # opens with "ok", "thanks", "sure", 👍 …
    "digits",
    "digits_both",  # numbers on both sides: an offer and a counter-offer
    "target_disputed",  # the target itself disagreed (by the cues)
    "length",  # words / _SUBSTANTIVE_WORDS, at most 1: an argument, not "ok" or "sure"
    "assistant",  # the reply is an AI's
    "rhetorical",  # "why would", "since when", "are you serious", "really?"
    "immediate",  # the target is the message just before
    "exclaims",
    "alternating",  # the two took turns just before
    "courtesy",  # opens with thanks, an apology, a greeting, "no problem", "of course"
    "helpful",  # offers to act: "I can", "I'll send", "we can"
    "target_requests",  # the target asks for something: "could you", "can you", "please"
    "argued",  # the phrase cues found a disagreement somewhere in the conversation
)
WEIGHTS_FILE = Path(__file__).with_name("reply_model.json")
KINDS = ("disagreement", "agreement")
# Feature-name prefixes of the words: a word of the reply, one of its first
# _OPENING_WORDS words, a pair of adjacent words of the reply, a word of its target.
_WORD = "w "
_OPENING = "o "
_PAIR = "p "
_TARGET = "t "
_OPENING_WORDS = 2
# Probability from which a reply counts. Disagreement is looked for only inside an
# argument (below), and there it counts from the cross-validated optimum. The writers of
# the quality set were asked for arguments, and a fifth of their replies disagree, far more
# than in most chats; agreement counts from above its optimum so advice that answers a
# question ("You should be fine without one, but … a good idea") is no agreement and the
# hand-labelled ordinary conversations of tests/fixtures/eval gain no spurious reactions
# (decision 0016).
DISAGREEMENT_FROM = 0.3
AGREEMENT_FROM = 0.45
# Disagreement is looked for only in an argument: where the phrase cues found one, or
# where the model gives at least ARGUMENT_REPLIES replies ARGUMENT_FROM or more.
ARGUMENT_FROM = 0.65
ARGUMENT_REPLIES = 2


# Fitted weights stay within a few units; one beyond this (or not a number) is a broken file.
MAX_WEIGHT = 1000.0


@dataclass(frozen=True, slots=True)
class Model:
    """One regression: a weight per dense feature (in the order of FEATURES) and per
    word feature, by name ("w anyway", "o so", "p you said", "t deadline")."""

    dense: tuple[float, ...]
    words: dict[str, float]


@cache
def models() -> dict[str, Model]:
    """The fitted regressions, by kind (KINDS). A file that is missing, unreadable, fitted
    on other features or holding a weight that is not a number within ±MAX_WEIGHT is
    refused with a ValueError that names it."""
    raw, retrain = read_weights(WEIGHTS_FILE, "train_reply_model.py", "features", list(FEATURES))
    try:
        found = {
            kind: Model(
                tuple(float(w) for w in raw[kind]["dense"]),
                {str(n): float(w) for n, w in raw[kind]["words"].items()},
            )
            for kind in KINDS
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable ({exc!r}); {retrain}") from exc
    for kind, model in found.items():
        if len(model.dense) != len(FEATURES):
            raise ValueError(f"{len(model.dense)} dense {kind} weights; {retrain}")
        if not all(abs(w) <= MAX_WEIGHT for w in (*model.dense, *model.words.values())):
            raise ValueError(f"a {kind} weight is not a number within ±{MAX_WEIGHT:g}; {retrain}")
    return found


def own_words(tokens: Sequence[str]) -> set[str]:
    """The word features of a reply's own tokens."""
    found = {_WORD + t for t in tokens}
    found.update(_OPENING + t for t in tokens[:_OPENING_WORDS])
    found.update(f"{_PAIR}{a} {b}" for a, b in pairwise(tokens))
    return found


def target_words(tokens: Sequence[str]) -> set[str]:
    """The word features a reply takes from its target's tokens."""
    return {_TARGET + t for t in tokens}


R = TypeVar("R", bound=Reply)


class ReplyReader(Generic[R]):
    """Reads each message once: what the model needs of a reply depends on the message
    alone, except its relation to the target, so the per-message part is kept, with the
    sum of its word weights as a reply and as a target."""

    def __init__(
        self,
        turns: Sequence[R],
        disputed: frozenset[int] | set[int],
        agreed: frozenset[int] | set[int],
        content: Callable[[R], frozenset[str]],
    ) -> None:
        self._turns = turns
        self._disputed = disputed
        self._agreed = agreed
        self._content = content
        self._own: dict[int, tuple[float, ...]] = {}
        self._tokens: dict[int, list[str]] = {}
        self._as_reply: dict[int, tuple[float, float]] = {}
        self._as_target: dict[int, tuple[float, float]] = {}

    @property
    def argued(self) -> bool:
        """Whether the cues found a disagreement anywhere in the conversation."""
        return bool(self._disputed)

    def tokens(self, position: int) -> list[str]:
        found = self._tokens.get(position)
        if found is None:
            found = self._tokens[position] = _TOKEN.findall(self._turns[position].head)
        return found

    def _read(self, position: int) -> tuple[float, ...]:
        """(only_question, asks, negation, contrast, second_person, acknowledges, digits,
        length, assistant, rhetorical, exclaims, proposes, courtesy, helpful, requests) of
        one message."""
        found = self._own.get(position)
        if found is not None:
            return found
        turn = self._turns[position]
        head = turn.head
        tokens = self.tokens(position)
        negations = sum(1 for t in tokens if t in _NEGATIONS or t.endswith("n't"))
        contrasts = sum(1 for t in tokens if t in _CONTRASTS)
        pairs = set(pairwise(tokens))
        rhetorical = not _RHETORICAL_PAIRS.isdisjoint(pairs) or (
            "?" in head and not _RHETORICAL_WORDS.isdisjoint(tokens)
        )
        found = (
            1.0 if turn.only_question else 0.0,
            1.0 if turn.questions else 0.0,
            min(3, negations) / 3,
            min(3, contrasts) / 3,
            1.0 if _SECOND_PERSON.intersection(tokens) else 0.0,
            1.0 if _ACKNOWLEDGEMENT.match(turn.opening) else 0.0,
            1.0 if _DIGIT.search(head) else 0.0,
            min(1.0, len(head.split()) / _SUBSTANTIVE_WORDS),
            1.0 if turn.role == "ai" else 0.0,
            1.0 if rhetorical else 0.0,
            1.0 if "!" in head else 0.0,
            1.0 if "let's" in tokens or not _PROPOSAL_PAIRS.isdisjoint(pairs) else 0.0,
            1.0 if _COURTESY.match(turn.opening) else 0.0,
            1.0 if not _HELPFUL_PAIRS.isdisjoint(pairs) else 0.0,
            1.0 if "please" in tokens or not _REQUEST_PAIRS.isdisjoint(pairs) else 0.0,
        )
        self._own[position] = found
        return found

    def features(self, position: int, target: int) -> list[float]:
        """The dense feature vector (in the order of FEATURES) of the reply at
        ``position`` to the message at ``target``."""
        turns = self._turns
        reply, earlier = turns[position], turns[target]
        own = self._read(position)
        only_q, asks, negation, contrast, you, ack, digits, length, ai, rhet, bang = own[:11]
        target_own = self._read(target)
        words, earlier_words = self._content(reply), self._content(earlier)
        shared = len(words & earlier_words) / max(1, min(len(words), len(earlier_words)))
        return [
            1.0,
            1.0 if position in self._disputed else 0.0,
            1.0 if position in self._agreed else 0.0,
            only_q,
            asks,
            negation,
            contrast,
            you,
            shared if words and earlier_words else 0.0,
            target_own[1],
            target_own[11],
            ack,
            digits,
            digits * target_own[6],
            1.0 if target in self._disputed else 0.0,
            length,
            ai,
            rhet,
            1.0 if target == position - 1 else 0.0,
            bang,
            1.0
            if position >= 2
            and turns[position - 2].speaker == reply.speaker
            and turns[position - 1].speaker == earlier.speaker
            else 0.0,
            own[12],
            own[13],
            target_own[14],
            1.0 if self.argued else 0.0,
        ]

    def words(self, position: int, target: int) -> set[str]:
        """The word features of the reply at ``position`` to the message at ``target``."""
        return own_words(self.tokens(position)) | target_words(self.tokens(target))

    def probabilities(self, position: int, target: int) -> tuple[float, float]:
        """P(disagrees), P(agrees) of the reply at ``position`` to the message at
        ``target``."""
        disagree, agree = models()["disagreement"], models()["agreement"]
        x = self.features(position, target)
        as_reply = self._as_reply.get(position)
        if as_reply is None:
            found = own_words(self.tokens(position))
            as_reply = self._as_reply[position] = (_sum(disagree, found), _sum(agree, found))
        as_target = self._as_target.get(target)
        if as_target is None:
            found = target_words(self.tokens(target))
            as_target = self._as_target[target] = (_sum(disagree, found), _sum(agree, found))
        return (
            _logistic(_dot(disagree.dense, x) + as_reply[0] + as_target[0]),
            _logistic(_dot(agree.dense, x) + as_reply[1] + as_target[1]),
        )


def _sum(model: Model, names: set[str]) -> float:
    """The weights of ``names``, summed exactly: a set's order varies between processes,
    a rounded running sum with it."""
    words = model.words
    return math.fsum(words.get(n, 0.0) for n in names)


def _dot(weights: Sequence[float], x: Sequence[float]) -> float:
    return sum(w * v for w, v in zip(weights, x, strict=True))


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
