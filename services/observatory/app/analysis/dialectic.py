"""Dialectic structures: questions and answers, Socratic chains, thesis–antithesis–synthesis,
agreement, disagreement and accepted corrections.

Everything is read from surface cues over the prose of each message (code blocks, inline
code, log/trace lines and ``>`` quoted lines removed first, so a ``?`` in a regex or a quoted
error never counts). Each detector looks at a window of a few messages around a cue, so the
whole pass is O(n·w) with w ≤ 6.

Questions. A sentence is interrogative when it ends with ``?``, opens with interrogative
word order ("can you…", "is it…", "what is…", "how do…", "why not…"), is an indirect
request ("could you tell me…", "I wonder whether…", "I'd like to know…") or carries a
question tag (", isn't it", ", right"). It is a *genuine* question unless it is a stock
rhetorical form ("who cares?", "what's the point?", "how hard can it be?", "why would
anyone…") or the asker answers it straight away ("Why? Because…", or their very next message
opens with such an answer).

A ``question_answer`` pairs a message holding a genuine question with the first later
message, at most three messages on, by another speaker that does not just ask back and
either shares content words with the question or opens like an answer ("yes", "no",
"because", "you can…", "me!"). In a two-party exchange the other party's first reply
that is not a counter-question counts as the answer even without those cues; with three
or more speakers each speaker who answers in the window is paired. Questions that get no
such reply are reported by :func:`detect_dialectic` as unanswered.

The other structures are described where they are detected: Socratic chains in
:func:`_socratic`, agreement, disagreement and corrections in :func:`_reactions`,
thesis–antithesis–synthesis in :func:`_thesis_antithesis_synthesis`. Strengths are in
[0, 1]: a base for the structure plus the weight of each cue that supports it.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.analysis import reply_model
from app.analysis.cues import (
    AGREEMENT_OPENINGS,
    COURTESY_OPENING,
    ERROR_REPORT,
    INDIGNANT_QUESTIONS,
    NOT_DENIED,
    PUSHBACK_ANYWHERE,
    PUSHBACK_ANYWHERE_HINTS,
    PUSHBACK_OPENINGS,
)
from app.analysis.privacy import mask_pii
from app.analysis.text import (
    AUXILIARIES,
    BE_OR_MODAL,
    DETERMINERS,
    STOPWORDS,
    SUBJECTS,
    WH_WORDS,
    excerpt,
    plain_apostrophes,
    sentences,
    strip_code,
)
from app.conversation import Conversation, Message
from app.core import patterns
from app.core.cancellation import NEVER, CancelToken

_CHECK_EVERY = 256
_ANSWER_WINDOW = 3  # an answer may come up to three messages after its question
# A later reply than the direct one is reported as the answer from this strength, see
# _reported_answer.
_LATER_ANSWER_FROM = 0.65
# A reply that holds the line while it looks for the answer.
_HOLDING = patterns.compile(
    r"\b(?:let me (?:check|look|see|find|ask)|one moment|bear with|give me a (?:sec|second|minute)|"
    r"i'?ll (?:check|look into|find out|ask)|(?:look|looking) (?:this|it|that) up|"
    r"need to (?:check|look))\b"
)
# A reply that asks for what it needs before it can answer ("could you confirm the email
# on the booking?"), or turns the question back to be worked out together: a clarifying or
# teaching question, not the answer.
_CLARIFYING = patterns.compile(
    r"\b(?:(?:can|could|would) you (?:please |just )?(?:confirm|provide|send|share|give me|"
    r"check|tell me (?:your|the|which))|what(?:'s| is) (?:your|the) (?:account|order|booking|"
    r"reference|postcode|post code|zip|email|number|name|address)|which (?:card|account|order|"
    r"booking|email|version|browser|device)|let'?s (?:work (?:it|this) out|find (?:it|out)|"
    r"figure|think|test (?:it|that|this))|"
    r"(?:first|before that),? (?:can|could) you)\b"
)
# A question that asks for questions: the reply's question is its answer.
_INVITES_QUESTIONS = patterns.compile(
    r"\bany (?:other |more |last |further )?questions\b|\banything (?:else )?you(?:'d| would)? "
    r"(?:like|want) to (?:ask|know)\b"
)
# An opening sentence that greets, thanks, apologises or praises the question before asking
# back: courtesy, not an answer.
_FILLER = patterns.compile(COURTESY_OPENING)
# The reply model reads conversations up to this many messages. Beyond it (exported
# channels, logs) the phrase cues alone find reactions: the model's extra structures
# would double a long result and its time (SPEC §10: 10,000 messages within 2 s).
_MODELLED_MAX = 2_000
# Key moments start at 0.7; a reaction only the model sees stays below.
_MODELLED_STRENGTH = 0.65
# The end of a message's first sentence.
_FIRST_END = patterns.compile(r"[.!?](?=\s|$)")
_TARGET_WINDOW = 3  # agreement/disagreement/correction refer to one of the last three messages
_ACCEPT_WINDOW = 3  # the corrected party accepts within three messages
_TAS_WINDOW = 4  # thesis → antithesis → synthesis, each at most four messages apart
_TAS_REACH = 10  # how far a synthesis may follow an explicit objection
_TENTATIVE_WORDS = 8
# A tentative answer that still asks something: a proposal to confirm, a question back.
_ASKS_BACK = patterns.compile(
    r"(?i)(?:\bthen|,\s{0,3}+(?:why|how come)|\b(?:you|u|yourself|yours|vous|toi|tú|du))"
    r"\?++\W{0,3}+$|\bor\b"
)
# A question about a plan or a choice ("Where should we eat tonight?"): a reply proposing
# one ("The pizza place on 5th?") asks to be confirmed, unlike a guess at a quiz question.
_DECIDING = patterns.compile(
    r"\b(?:should|shall|do|are|can|could|will) we\b|\b(?:should|shall) i\b|"
    r"\bdo you (?:want|fancy|prefer)\b|\bwould you (?:like|prefer)\b|\bwhat time\b"
)
# A question that repeats at most this many words of the message before it is an echo.
_ECHO_WORDS = 3
_ECHO_FILLER = frozenset(
    "then so the a an and or really en de di y e et und oder o ok".split()  # noqa: SIM905
)
_ARGUMENT_REACH = 4  # an argument goes on while its rounds are at most four messages apart
_HELD_ROUNDS = 2  # rounds in a row an argument is followed without a cue, see _reactions
_ACCEPTED_PROPOSAL = 0.7  # reconciling strength of a proposal the other side accepts
_OPENING_CHARS = 160  # reactions ("I agree", "that's incorrect") sit at the start of a reply
# Content words, claims and reconciling cues are read from the start of each message: that
# is where a reply engages with what came before, and it bounds the work per message.
_HEAD_CHARS = 400
_TAIL_CHARS = 300
_QUESTION_WINDOW = 300  # how far back from a "?" its sentence may start
_FOLLOWING_CHARS = 80
# Question marks read per message: each costs a sentence split of its window, and a
# message of nothing but "? ? ? …" would otherwise cost that 100,000 times.
_MAX_QUESTION_MARKS = 200
_MIN_TAS_STRENGTH = 0.55
# A reply whose interrogative sentences make up this share of its words, and that opens
# like no answer, asks back rather than answers.
_COUNTER_QUESTION = 0.3
_CONCESSION_CHARS = 30
# In a Socratic exchange the questioner leads and the other answers briefly: the answers
# average at most this many times the length of the questioning messages. An expert
# answering a learner's follow-up questions at length is not being led.
_SOCRATIC_ANSWER_RATIO = 1.5
_EXCERPT_SOURCE_CHARS = 1200
_PII_MAX_CHARS = 320  # longer than any e-mail address (254) or phone number

# --- question syntax ---------------------------------------------------------------------

_LEAD_IN = (
    r"(?:(?:and|but|so|ok|okay|also|then|well|now|oh|hmm|hey|hi|please|sorry|anyway|btw|"
    r"by the way|one more thing|last thing|quick question)\b[,:]?\s+)?"
)
_SUBJECT = SUBJECTS
_DETERMINER = DETERMINERS
_WH = WH_WORDS

# Interrogative word order even without "?": "can you…", "is the…", "does it…". "Do it",
# "do this", "have that ready" open imperatives, so do/have count only before a personal
# subject; does/did/has never open an imperative, and "don't you dare / ever / worry"
# forbids ("don't you dare apologise. he was your best mate").
_PERSON = r"i|you|we|they|he|she|there|someone|anyone|anybody|people"
_AUX_OPENER = patterns.compile(
    rf"^{_LEAD_IN}(?:"
    rf"(?:{BE_OR_MODAL}|isn't|aren't|wasn't|weren't|can't|couldn't|wouldn't|won't|"
    rf"shouldn't)\s+(?:{_SUBJECT}|{_DETERMINER})"
    rf"|(?:does|did|has|doesn't|didn't|hasn't)\s+(?:{_SUBJECT}|{_DETERMINER})"
    rf"|(?:do|have|haven't)\s+(?:{_PERSON})"
    rf"|don't\s+(?!you\s(?:dare|ever|worry|forget)\b)(?:{_PERSON})"
    rf")\b"
)
# "what is…", "how do…", "how many…", "what's…", "why not…", a bare "why".
_WH_OPENER = patterns.compile(
    rf"^{_LEAD_IN}(?:{_WH})(?:\s+(?:{AUXILIARIES}|about|else|many|much|long|often|far|not)\b|'s\b|\s*$)"
)
# Free relatives share the wh-opener's shape ("What is more, …", "Which is why…").
_WH_STATEMENT = patterns.compile(
    r"^(?:what is more|which is why|which is (?:what|how)|how is it going)\b"
)
_INDIRECT = patterns.compile(
    r"^(?:please\s+)?(?:i(?: wonder| was wondering| am wondering|'m wondering)\b"
    r"|i(?: would|'d) (?:like|love) to know\b"
    r"|(?:could|can|would|will) you (?:please )?(?:tell|explain|show|clarify|help|describe)\b"
    r"|do you (?:know|think|have|mean)\b"
    r"|any (?:idea|ideas|thoughts|suggestions) (?:on|about|why|how|what|whether)\b)"
)
_TAG = patterns.compile(
    r",\s*(?:(?:isn't|aren't|wasn't|weren't|doesn't|don't|didn't|won't|wouldn't|can't|"
    r"couldn't|shouldn't|haven't|hasn't|is|are|does|do|did|will|would|can|could)\s+"
    r"(?:it|you|he|she|they|we|there|that|this|i))\s*[?.]?$"
)
# A chat's question without "?": "is 2027 a leap year", "is 3pm ok", "is 10:30 too early",
# "you two going saturday or nah".
_NUMBER_QUESTION = patterns.compile(r"(?:is|was|are|were) \d{1,6}(?:am|pm)?\b")
_RHETORICAL = patterns.compile(
    r"\b(?:who cares|what's the point|what is the point|what was the point|"
    r"isn't it obvious|is it not obvious|wasn't it obvious|isn't that obvious|"
    r"why would (?:anyone|anybody|you ever|i ever)|why on earth would|"
    r"how hard (?:can|could) it (?:be|possibly be)|what could (?:possibly )?go wrong|"
    r"who knows|who would have thought|who'd have thought|why bother|am i right|"
    r"are you kidding|are you serious|you know what|need i say more|what's not to (?:like|love)|"
    r"what else is new|what did you expect|how (?:cool|great|awesome|nice|sad) is that|"
    r"isn't (?:that|it) (?:great|nice|funny|ironic|wonderful|sad)|who doesn't|"
    r"how should i know|how would i know|what do you know|what have we got to lose|"
    r"why not indeed|why didn't i think of that|is the pope|"
    r"how (?:is|am|are) (?:anyone|anybody|one|i|we) (?:supposed|meant|expected) to|"
    r"is it (?:really )?too much to ask|who (?:decides|decided|on earth)|"
    r"why (?:does|do|is|are|must) (?:every|all|everyone|everybody|nobody|no one)\b|"
    r"what (?:were|was) (?:they|he|she) thinking|seriously|"
    r"(?:" + INDIGNANT_QUESTIONS + r")(?=\W*$)|"
    r"vous vous moquez|tu te moques|are you having a laugh|"
    r"who(?:'s| is| would be) paying that(?=\W*$)|"
    r"aren't we (?:so )?(?:organised|organized|clever|lucky|efficient|smart|posh|fancy))\b"
)
# A question its asker answers at once: "Why does it fail? Because the index is stale."
_SELF_ANSWER = patterns.compile(
    r"^(?:because|simple|simply|easy|the answer|the reason|it's because|that's because|"
    r"answer:|turns out|it turns out|short answer|spoiler|yes|no)\b"
)
# One-word "questions" that express surprise or ask for a repeat, not for information.
_INTERJECTIONS = frozenset(
    [
        "really",
        "huh",
        "what",
        "seriously",
        "right",
        "sorry",
        "pardon",
        "eh",
        "hm",
        "hmm",
        "oh",
        "ok",
        "okay",
        "yes",
        "no",
        "wow",
    ]
)
_WH_START = patterns.compile(rf"^{_LEAD_IN}(?:{_WH})\b")

# --- reply cues ----------------------------------------------------------------------------

_ANSWER_OPENER = patterns.compile(
    r"^(?:yes|yeah|yep|yup|no|nope|nah|sure|of course|certainly|definitely|absolutely|"
    r"me|me too|i am|i'm in|i will|i'll|i can|i do|i did|we can|we will|we do|"
    r"i've got|i have|we have|we've got|about|around|roughly|approximately|\d|"
    r"because|it's because|that's because|the (?:short )?answer is|the reason is|in short|"
    r"basically|here's|here is|here are|there (?:are|is)|you can|you could|you should|"
    r"you need|you'd|you will|you'll|to (?:do|fix|get|make|use|answer|be)|"
    r"it (?:is|was|depends|means|does|will|can|should)|it's|they (?:are|were)|"
    r"that (?:is|means|depends)|i think|i believe|i'd say|probably|good question|"
    r"great question|short answer|first|1[.)])\b"
)
# An explanation somewhere in the opening: the reply answers even if it also asks back
# ("That error almost always means…; which command did you run?").
_EXPLANATION = patterns.compile(
    r"\b(?:means|because|the (?:problem|issue|cause|reason) is|happens when|is caused by|"
    r"you need to|you can|you should|try)\b"
)
_BECAUSE = patterns.compile(r"\b(?:because|since|due to|the reason)\b")
# Replies that settle a yes/no question ("Can we go at 7?" — "7 works for me").
_YES_NO = patterns.compile(
    r"^(?:yes|yeah|yep|yup|no|nope|nah|sure|of course|correct|right|ok|okay|fine|deal|"
    r"agreed|absolutely|definitely|certainly|sounds good|sounds great|(?:\S+ )?works(?: for me)?|"
    r"not (?:really|yet|at all))\b"
)

_DISAGREE_STRONG = patterns.compile(
    r"\b(?:i (?:strongly |completely |totally |respectfully |still |have to |must )?disagree|"
    r"i (?:don't|do not) agree|that's not (?:right|true|correct|the case|how)|"
    r"that is not (?:right|true|correct|the case)|that isn't (?:right|true|correct|the case)|"
    r"that's (?:wrong|incorrect|false)|you're wrong|you are wrong|i (?:don't|do not) think so|"
    r"i'm not (?:so )?convinced|on the contrary|i beg to differ|i'd push back|"
    r"i would push back|that doesn't follow|i (?:don't|do not) buy (?:it|that)|"
    r"(?:that|this|sorry|which|it) (?:doesn't|does not|won't|will not) (?:fix|help|solve|change)|"
    r"that won't work|that doesn't work for|not (?:acceptable|an option|feasible)|"
    r"(?:above|over|beyond) (?:what we|our) (?:budget|can afford)|i'm afraid (?:not|we can't))"
)
_DISAGREE_OPENING = patterns.compile(
    r"^(?:no,? actually|no,? that's|not really|not exactly|not necessarily|nope|"
    r"well,? actually,? no|hmm,? no|no[,.!]|(?:absolutely|definitely|totally) not\b|"
    r"(?:totally|completely|strongly) disagree\b)"
)
_AGREE_STRONG = patterns.compile(
    r"\b(?:i (?:completely |totally |fully |strongly |absolutely |do )?agree|agreed|"
    r"sounds (?:good|great|like a plan)|fine by me|works for me|that works|count me in|"
    r"(?:good|great) idea|i could live with that|let's do (?:it|that)|de acuerdo|me encanta|"
    r"(?:good|great|fair|valid|excellent) point|you're (?:absolutely |totally |quite )?right|"
    r"you are (?:absolutely |totally |quite )?right|that makes sense|makes sense|"
    r"fair enough|well said|i concur|that's (?:true|right|correct|exactly it)|spot on|"
    r"couldn't agree more)\b"
)
_AGREE_OPENING = patterns.compile(
    r"^(?:exactly|precisely|absolutely|indeed|true|right|definitely|totally|correct|deal|"
    r"perfect|perfecto|great|nice|d'accord|genau|einverstanden|"
    r"yes,? exactly|yes,? that's it)\b" + NOT_DENIED  # not "Absolutely not.", "Totally disagree"
)
# Cues that only mean assent to a position, not compliance with a request: skipped when the
# message they answer is a question ("Can you help?" — "Absolutely!").
_WEAK_AGREEMENT = frozenset(
    (
        "absolutely",
        "indeed",
        "true",
        "right",
        "definitely",
        "totally",
        "correct",
        "perfect",
        "perfecto",
        "great",
        "nice",
    )
)
_NEGATED = patterns.compile(r"(?:\bnot|n't|\bnever|\bhardly)\s+(?:\w+\s+){0,2}$")
_PUSHBACK_OPENING = patterns.compile(r"(?:" + "|".join(PUSHBACK_OPENINGS) + r")")
_PUSHBACK_ANYWHERE = patterns.compile("|".join(PUSHBACK_ANYWHERE))
_CONCESSION = patterns.compile(r"(?:" + "|".join(AGREEMENT_OPENINGS) + r")")
_ERROR_REPORT = patterns.compile("|".join(ERROR_REPORT))
_PROPOSAL = patterns.compile(
    r"\b(?:what if|how about|why don't we|let's|maybe we|perhaps we|could we|"
    r"shall we|we could)\b"
)
# A reply that opens by countering: "But…", "No, …", "Not if…", "Still, …", "Yet…".
_ROUND_OPENING = patterns.compile(
    r"(?:(?:well|ok|okay|sure|yes|yeah|hmm|fair|right|true)[,.!]?\s+)?"
    r"(?:but|however|though|yet|still|no|not|nope|except|only)\b"
)
_CONCEDE_THEN_OBJECT = patterns.compile(r"\b(?:but|though|however|aber|pero)\b")
# Discourse markers that may stand before a stance without changing it: "See, I read
# that shot as hopeful", "Look, that assumes…".
_DISCOURSE_LEAD = patterns.compile(r"(?:see|look|listen|honestly|well|i mean)[,.!]?\s{1,3}")
# A second sentence that turns against the first: "Kind of! But…", "I appreciate that.
# But…". The first sentence concedes or acknowledges; the second objects.
_TURNING_SENTENCE = patterns.compile(r"(?:but\b|however\b|still,|yet\b)")
# A claim granted only with a restriction: "Cheaper for now.", "It's 80% technical on
# paper." Said of the other's own words, it disputes them.
_RESTRICTION = patterns.compile(
    r"\b(?:for now|on paper|in theory|in principle|in the short (?:term|run))\b"
)
# Offers in a negotiation: "I could do $750", "Meet me at $620?", "Would you consider
# €1,520?", "I can't go below €1,600". An offer of another amount than the one on the
# table is a counter-offer, which rejects it.
_OFFER = patterns.compile(
    r"\b(?:i (?:could|can) (?:do|go(?: down| up)? to|offer|stretch to|manage)|meet me at|"
    r"would you (?:take|consider|accept|do)|best i can (?:do|stretch|offer)|"
    r"i (?:can't|cannot) go (?:below|above|lower|higher|under|over)|as (?:low|high) as)\b"
)
_AMOUNT = patterns.compile(
    r"[$€£]\s?\d[\d,.]{0,12}|\b\d[\d,.]{0,12}\s?(?:€|euros?|dollars?|pounds?|quid|k)\b"
)
# A question that proposes rather than asks for information: "Would you take $550?",
# "Rehearsal Thursday then?", "What if we…?". Turning it down disagrees with it.
_PROPOSAL_QUESTION = patterns.compile(
    r"\b(?:would you (?:take|accept|consider|do)|what if|how about|why don't we|could we|"
    r"can we|shall we|should we|we could|let's)\b|\b(?:then|ok|okay|vale|alright|deal)\s?\?"
)
_GREETING = patterns.compile(r"(?:hi|hello|hey|dear|morning|good (?:morning|afternoon|evening))\b")
# Courtesies that open with "no" or close an exchange: not one more round of an argument.
_COURTESY = patterns.compile(
    r"(?:no (?:worries|problem|rush|need|pressure)|thanks|thank you|cheers|noted|will do|"
    r"good luck|i understand|i see|(?:ok|okay|alright|fine|sure)[,.!]?$|"
    r"(?:maybe|perhaps|possibly)\b)"
)

_CORRECTION = patterns.compile(
    r"\b(?:that's (?:incorrect|not quite right|not quite correct|not correct|wrong|a mistake|"
    r"a typo|not right)|that is (?:incorrect|not quite right|not correct|wrong)|"
    r"you made (?:a|an) (?:mistake|error|typo)|you've made (?:a|an) (?:mistake|error|typo)|"
    r"there's (?:a|an) (?:mistake|error|typo) in|small correction|one correction|correction:|"
    r"it should (?:actually )?be|should actually be|that's not (?:how|what)|"
    r"i have (?:a|one|some) concerns?|there's (?:a|an) (?:bug|race condition|race|problem|issue) "
    r"(?:in|with|here)|this (?:won't work|will break|breaks))\b"
)
_CORRECTION_OPENING = patterns.compile(r"^(?:(?:well|no|hmm),? )?(?:actually|not quite)\b")
_STRONG_CORRECTION = patterns.compile(r"\b(?:incorrect|mistake|wrong|error|typo|not quite)\b")
_ACCEPTANCE = patterns.compile(
    r"\b(?:you're (?:absolutely |totally |quite )?right|you are (?:absolutely |quite )?right|"
    r"my (?:mistake|bad|apologies|error)|(?:i )?apologi[sz]e|apologies|"
    r"sorry (?:about that|for the (?:confusion|mistake|error))|"
    r"(?:good|nice|great) catch|thanks for (?:catching|the correction|correcting|pointing)|"
    r"i stand corrected|you're correct|you are correct|i was wrong|i got that wrong|"
    r"i made (?:a|an) (?:mistake|error)|corrected|oops|"
    r"let me (?:fix|correct) (?:that|it|this))\b"
)

# --- thesis / antithesis / synthesis -------------------------------------------------------

_CLAIM = patterns.compile(
    r"\b(?:i (?:really |strongly |firmly |still )?(?:think|believe|feel|reckon|maintain|"
    r"contend)|in my (?:view|opinion|experience)|my (?:view|position|take|opinion) is|"
    r"i'd (?:say|argue)|i would (?:say|argue)|i'm (?:convinced|certain)|it's clear|clearly|"
    r"obviously|the (?:best|right|only) (?:way|approach|option|choice)|we should|"
    r"we must|(?:is|are) (?:better|worse|faster|slower|safer|simpler|the best|the worst))\b"
)
_DECLARATIVE = patterns.compile(r"\b(?:is|are|was|were|will|should|must|can't|cannot|won't)\b")
_CONTRAST_STRONG = patterns.compile(
    r"\b(?:i (?:strongly |respectfully )?disagree|on the other hand|however|"
    r"i (?:don't|do not) (?:think|agree|buy)|not necessarily|i'm not (?:sure|convinced)|"
    r"the (?:problem|trouble|downside) (?:is|with)|on the contrary|in contrast|whereas|"
    r"counterpoint|that ignores|unless)\b"
)
# Every strong contrast cue contains one of these: a cheaper test than the pattern.
_CONTRAST_HINTS = (
    *("disagree", "other hand", "however", "i don't", "i do not", "necessarily", "i'm not"),
    *("the problem", "the trouble", "the downside", "contra", "whereas", "counterpoint"),
    *("ignores", "unless"),
)
_CONTRAST_WEAK = patterns.compile(r"\b(?:but|although|though|yet|instead|rather than)\b")
_NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "doesn't",
        "don't",
        "won't",
        "can't",
        "cannot",
    ]
)
_SYNTHESIS_STRONG = patterns.compile(
    r"\b(?:middle ground|taken together|best of both|compromise|strike a balance|"
    r"balance between|reconcile|hybrid|somewhere in between|combine|combining|"
    r"combination of|fair point,? so (?:maybe|perhaps)|perhaps we (?:can|could)|"
    r"maybe we (?:can|could)|we could (?:do|use|have|keep) both|both (?:of you|sides|views|"
    r"approaches|options|points)|you're both|each has)\b"
)
_SYNTHESIS_WEAK = patterns.compile(r"\b(?:both|it depends|depends on|in some cases|either way)\b")

# --- Socratic chains -----------------------------------------------------------------------

_BUILDS_ON = patterns.compile(
    r"^(?:(?:and|but|so|then|okay|ok|right|good)[,.]?\s+)*(?:so,? then|so|then|and why|"
    r"and how|and what|but why|but then|what follows|what if|and if|if so|"
    r"if (?:that|this|so) (?:is|were) (?:so|true|the case)|does that mean|doesn't that mean|"
    r"wouldn't that|would that|in that case|does it follow|would it follow|"
    r"so you're saying|so you'd say|then what|then why|then how|why is that|why so|how so|"
    r"what makes|what about|(?:what|how|why) (?:does|would|did|could|will) (?:that|this))\b"
)
_WHAT_FOLLOWS = patterns.compile(r"\bwhat follows\b|\bdoes (?:it|that) follow\b")

_WORD = patterns.compile(r"[^\W_]+(?:'[^\W_]+)*")
# Two or more characters starting with a letter: no pure numbers, no one-letter tokens.
_CONTENT_WORD = patterns.compile(r"\b[^\W\d_][^\W_]+(?:'[^\W_]+)*")
# The same for plain ASCII text, about twice as fast (no word-boundary test: a token
# glued to a digit, "3dx", yields "dx", which is harmless for overlap).
_ASCII_CONTENT_WORD = patterns.compile(r"[a-z][a-z0-9]+(?:'[a-z0-9]+)*")


@dataclass(slots=True)
class _Turn:
    """One non-system message, read once; the TAS cues are filled in only when needed."""

    index: int
    speaker: str
    role: str
    text: str
    head: str  # the prose of the first _HEAD_CHARS characters, lower-cased, ’ ʼ ´ → '
    opening: str  # the start of ``head`` with list/heading markup removed
    words: frozenset[str] | None = None  # content words of ``head``, see _content_of
    questions: tuple[str, ...] = ()  # genuine question sentences, as written
    question_content: frozenset[str] = frozenset()
    interrogative: bool = False  # holds any interrogative sentence, genuine or not
    only_question: bool = False  # nothing but questions (and a word or two of filler)
    question_share: float = 0.0  # share of the words that are in interrogative sentences
    self_answered: bool = False
    claim: float | None = None
    contrast: float | None = None
    negated: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class DialecticFindings:
    structures: list[dict[str, Any]]
    unanswered_questions: list[int] = field(default_factory=list)


def analyze_dialectic(
    conversation: Conversation, token: CancelToken = NEVER
) -> list[dict[str, Any]]:
    """The dialectic structures of ``conversation``, sorted by first message then type."""
    return detect_dialectic(conversation, token).structures


def detect_dialectic(conversation: Conversation, token: CancelToken = NEVER) -> DialecticFindings:
    """Dialectic structures plus the indices of genuine questions nobody answered."""
    turns = read_turns(conversation, token)
    multiparty = len({t.speaker for t in turns}) > 2

    structures: list[dict[str, Any]] = []
    pairs, unanswered = _question_answers(turns, multiparty, token)
    for position, (q, a, strength) in enumerate(pairs):
        if position % _CHECK_EVERY == 0:
            token.check()  # each structure quotes and masks text: not free at 20,000 messages
        if _reported_answer(turns, q, a, strength):
            structures.append(_qa_structure(turns[q], turns[a], strength))
    socratic = _socratic(turns, pairs, token)
    socratic.extend(_guided_questioning(turns, socratic, token))
    structures.extend(socratic)
    reactions = _reactions(turns, token)
    if len(turns) <= _MODELLED_MAX:
        reactions.extend(_modelled_reactions(turns, reactions, token))
    structures.extend(reactions)
    syntheses = _thesis_antithesis_synthesis(turns, token)
    syntheses.extend(_negotiated_syntheses(turns, reactions, syntheses))
    syntheses.extend(_agreed_proposals(turns, reactions, syntheses))
    structures.extend(syntheses)
    structures.sort(key=lambda s: (s["messages"][0], s["type"], s["messages"]))
    return DialecticFindings(structures, [turns[q].index for q in unanswered])


def read_turns(conversation: Conversation, token: CancelToken = NEVER) -> list[_Turn]:
    """Every message but system prompts, read once, with questions their askers answer at
    once marked."""
    turns: list[_Turn] = []
    for position, message in enumerate(conversation.messages):
        if position % _CHECK_EVERY == 0:
            token.check()
        if message.role != "system":
            turns.append(_read(message))
    _mark_self_answers(turns)
    return turns


def reply_reader(
    turns: Sequence[_Turn], cued: Sequence[dict[str, Any]]
) -> reply_model.ReplyReader[_Turn]:
    """The reply model's reader of ``turns``, told which replies the cues' reactions
    (``cued``, from _reactions) call disagreement and agreement."""
    position_of = {t.index: p for p, t in enumerate(turns)}
    disputed = {position_of[s["roles"]["response"]] for s in cued if s["type"] == "disagreement"}
    agreed = {position_of[s["roles"]["response"]] for s in cued if s["type"] == "agreement"}
    return reply_model.ReplyReader(turns, disputed, agreed, _content_of)


# --- reading one message -------------------------------------------------------------------


def _read(message: Message) -> _Turn:
    text = message.text
    if "?" in text or len(text) <= _HEAD_CHARS:
        prose = _without_quotes(strip_code(text))
        head_prose = prose[:_HEAD_CHARS]
        candidates = _question_marks(prose) if "?" in prose else _unmarked_candidates(prose, prose)
    else:
        # A long message without "?": only its opening and closing sentences can ask.
        prose = head_prose = _without_quotes(strip_code(text[:_HEAD_CHARS], remember=False))
        tail = _without_quotes(strip_code(text[-_TAIL_CHARS:], remember=False))
        candidates = _unmarked_candidates(head_prose, tail)
    head = _lower(head_prose)
    turn = _Turn(
        index=message.index,
        speaker=message.speaker,
        role=message.role,
        text=text,
        head=head,
        opening=_unmarked(head[:_OPENING_CHARS].lstrip()),
    )
    if candidates:
        _read_questions(turn, prose, candidates)
    return turn


def _content_of(turn: _Turn) -> frozenset[str]:
    """Content words, computed the first time a detector compares this message."""
    if turn.words is None:
        turn.words = _content(turn.head)
    return turn.words


def _lower(prose: str) -> str:
    return plain_apostrophes(prose.lower())


def _content(lower: str) -> frozenset[str]:
    """Content words as a set, for overlap between messages: the words
    ``text.content_words`` keeps, found with one pattern and a set difference because
    order does not matter here."""
    pattern = _ASCII_CONTENT_WORD if lower.isascii() else _CONTENT_WORD
    found = frozenset(pattern.findall(lower))
    if "'s" in lower:
        found = frozenset(w[:-2] if w.endswith("'s") else w for w in found)
    # A crude plural fold ("tuples" ~ "tuple"): only overlap between messages is compared,
    # so "analysis" → "analysi" on both sides does no harm.
    return frozenset(
        w[:-1] if len(w) > 3 and w[-1] == "s" and w[-2] != "s" else w for w in found - STOPWORDS
    )


def _without_quotes(prose: str) -> str:
    """Drop ``>`` quoted lines: a quoted question or log line is not the writer's own."""
    if ">" not in prose:
        return prose
    return "\n".join(line for line in prose.split("\n") if not line.lstrip().startswith(">"))


# Possessive and anchored: a long run of marks or digits is read once, not split every way.
_MARKUP = patterns.compile(r"\A(?:[-*+#>]++\s*+|\d++[.)]\s++)++")


def _unmarked(text: str) -> str:
    """``text`` without the list, heading and quote markup it opens with."""
    markup = _MARKUP.match(text)
    return text[markup.end() :] if markup else text


# Within a sentence, a line break after "?" or before a capital starts a new sentence.
_LINE_BREAK = patterns.compile(r"(?<=\?)[ \t]*\n|\n(?=[ \t]*[A-Z¿])")
_TERMINATOR = patterns.compile(r"[.!?](?=\s|$)|\n")
_QUESTION_END_FOLLOWERS = frozenset(" \t\r\n\"')]*_»”’")


def _question_marks(prose: str) -> list[tuple[str, str]]:
    """(sentence, what follows it) for each sentence ending in "?", plus the opening
    sentence (it may ask without a question mark: "Could you check the logs. Thanks")."""
    found: list[tuple[str, str]] = []
    first = _first_sentence(prose)
    if first and not first[0].endswith("?"):
        found.append(first)
    position = prose.find("?")
    marks = 0
    while position != -1 and marks < _MAX_QUESTION_MARKS:
        marks += 1
        end = position + 1
        while end < len(prose) and prose[end] == "?":
            end += 1
        # "?" inside a URL or a token ("/search?q=x") does not end a sentence.
        if end == len(prose) or prose[end] in _QUESTION_END_FOLLOWERS:
            window = prose[max(0, position - _QUESTION_WINDOW) : end]
            pieces = [p for s in sentences(window) for p in _LINE_BREAK.split(s) if p.strip()]
            if pieces:
                found.append((pieces[-1].strip(), prose[end : end + _FOLLOWING_CHARS]))
        position = prose.find("?", end)
    last = _last_sentence(prose)
    if last and not last.endswith("?") and (first is None or last != first[0]):
        found.append((last, ""))  # "…anyway, how do I set up Redis" closes many requests
    return found


def _unmarked_candidates(head: str, tail: str) -> list[tuple[str, str]]:
    """Without a "?" only the opening and closing sentences are read for question syntax:
    that is where "can you tell me…" or "I wonder whether…" stand in practice."""
    found: list[tuple[str, str]] = []
    first = _first_sentence(head)
    if first:
        found.append(first)
        if len(first[0].split()) <= 3:  # "Hi team." — the request may be the next sentence
            second = _first_sentence(first[1])
            if second:
                found.append(second)
    last = _last_sentence(tail)
    if last and last not in [sentence for sentence, _ in found]:
        found.append((last, ""))
    return found


def _first_sentence(prose: str) -> tuple[str, str] | None:
    stripped = prose.lstrip()
    match = _TERMINATOR.search(stripped)
    end = match.end() if match else len(stripped)
    sentence = stripped[:end].strip()
    return (sentence, stripped[end:]) if sentence else None


def _last_sentence(prose: str) -> str | None:
    stripped = prose.rstrip()
    if not stripped:
        return None
    body = stripped[:-1]
    start = max(body.rfind(". "), body.rfind("! "), body.rfind("? "), body.rfind("\n"))
    return stripped[start + 1 :].strip() or None


def _read_questions(turn: _Turn, prose: str, candidates: Sequence[tuple[str, str]]) -> None:
    found: list[str] = []
    asked_words = 0
    for sentence, following in candidates:
        plain = _unmarked(_lower(sentence)).strip(" \t\"')]}*_")
        if not _is_interrogative(plain):
            continue
        turn.interrogative = True
        words = _WORD.findall(plain)
        asked_words += len(sentence.split())
        if _RHETORICAL.search(plain):
            continue
        if _SELF_ANSWER.match(_unmarked(_lower(following[:_FOLLOWING_CHARS].lstrip()))):
            continue
        if len(words) < 2 and (not words or words[0] in _INTERJECTIONS or "??" in plain):
            continue  # "Really?", "Huh?", "Who??": surprise, not a request for information
        found.append(sentence)
    if not turn.interrogative:
        return
    turn.questions = tuple(found)
    total_words = len(prose.split())
    turn.question_share = min(1.0, asked_words / total_words) if total_words else 0.0
    # "Yes please. And the config?" answers before it asks again.
    turn.only_question = (
        turn.interrogative and total_words - asked_words < 4 and not _YES_NO.match(turn.opening)
    )
    if found:
        turn.question_content = _content(_lower(" ".join(found)))


def _is_interrogative(plain: str) -> bool:
    if not plain:
        return False
    if plain.endswith("?"):
        return True
    if plain.endswith("!"):
        return False
    body = plain.rstrip(".")
    if _AUX_OPENER.match(body) or _INDIRECT.match(body) or _TAG.search(body):
        return True
    if body.endswith(" or nah") or _NUMBER_QUESTION.match(body):
        return True
    return (
        not plain.endswith(".") and _WH_OPENER.match(body) is not None
    ) and not _WH_STATEMENT.match(body)


def _mark_self_answers(turns: list[_Turn]) -> None:
    """A question whose asker's very next message opens with an answer answers itself."""
    for position in range(len(turns) - 1):
        turn, following = turns[position], turns[position + 1]
        if (
            turn.questions
            and following.speaker == turn.speaker
            and not following.questions
            and _SELF_ANSWER.match(following.opening)
        ):
            turn.self_answered = True


# --- question → answer ---------------------------------------------------------------------


def _question_answers(
    turns: Sequence[_Turn], multiparty: bool, token: CancelToken
) -> tuple[list[tuple[int, int, float]], list[int]]:
    """(question, answer, strength) pairs and the questions left unanswered.

    A reply that is mostly a question of its own and opens like no answer is a counter- or
    clarifying question: the search goes on past it, and in a two-party exchange the
    first reply after such a detour is taken as the answer. With three or more speakers
    a question may get several answers, one per speaker ("Who's coming?" — "Me!" — "I'm
    in too").
    """
    pairs: list[tuple[int, int, float]] = []
    unanswered: list[int] = []
    tentative: set[int] = set()  # replies taken as answers said with a rising tone
    for q, question in enumerate(turns):
        if q % _CHECK_EVERY == 0:
            token.check()
        if not question.questions or question.self_answered or q in tentative:
            continue
        if q and _echoes(question, turns[q - 1]):
            continue  # "Four days?" after "…four days a week": surprise, not a request
        answered = False
        first_reply = True
        fallback: int | None = None
        repliers: set[str] = set()
        for a in range(q + 1, min(q + 1 + _ANSWER_WINDOW, len(turns))):
            reply = turns[a]
            if reply.speaker == question.speaker or reply.speaker in repliers:
                continue
            cue = _answer_cue(question, reply)
            adjacent = a == q + 1
            if adjacent and _tentative_answer(reply):
                pairs.append((q, a, 0.4))  # "It's tilted?": an answer said with a rising tone
                # "What's the shin bone called?" — "Fibula?" answers and asks nothing; "20th
                # then?" or "the movers did, why?" also asks back.
                if (
                    _asks_wh(question)
                    and not any(_ASKS_BACK.search(q) for q in reply.questions)
                    and not any(_DECIDING.search(q.lower()) for q in question.questions)
                ):
                    tentative.add(a)
                answered = True
                if not multiparty:
                    break
                repliers.add(reply.speaker)
                first_reply = False
                continue
            counter = reply.only_question or (not cue and reply.question_share >= _COUNTER_QUESTION)
            if counter and not (
                adjacent
                and (not _asks_first(turns, q, reply, multiparty) or _answers_then_asks(reply))
            ):
                continue
            # A second answer in a group chat must be about the question, not just sound
            # like an answer ("No promises 😂" after someone else's "Yes!!").
            strength = _answer_strength(question, reply, cue and not answered, adjacent=adjacent)
            if strength is None and first_reply and not multiparty:
                strength = 0.3 + (0.1 if adjacent else 0.0)
            if strength is None and adjacent and multiparty:
                # The direct reply may answer in words of its own ("Perfect.", "Grabbed a
                # sandwich"); in a group chat it is taken when nobody else answers.
                fallback = a
            first_reply = False
            if strength is None:
                continue
            if fallback is not None and len(question.question_content & _content_of(reply)) < 2:
                continue  # to pass over the direct reply, a later one must be clearly on topic
            pairs.append((q, a, strength))
            answered = True
            if not multiparty:
                break
            repliers.add(reply.speaker)
        if not answered and fallback is not None:
            pairs.append((q, fallback, 0.35))
            answered = True
        if not answered:
            unanswered.append(q)
    return pairs, unanswered


def _reported_answer(turns: Sequence[_Turn], q: int, a: int, strength: float) -> bool:
    """Whether the pair is reported: the direct reply, the answer of someone who first
    asked back ("Can you confirm the postcode?" … "The parcel was damaged"), or a later
    reply clearly about the question. A second voice in a group chat ("I'm in too" after
    "Me!") or a later reply that only sounds like an answer is not what people pair with
    the question: of such pairs in the quality set's development part, one in ten is
    (decision 0018). They still count for the Socratic chains and for what is answered."""
    if strength >= _LATER_ANSWER_FROM:
        return True
    asker = turns[q].speaker
    direct = next(p for p in range(q + 1, a + 1) if turns[p].speaker != asker)
    if a == direct:
        # The first reply by someone else, past the asker's own follow-ups ("🙏"), unless
        # one of them asked again: "Also what time should we leave?" is what it answers.
        return not any(turns[p].questions for p in range(q + 1, direct))
    return turns[direct].speaker == turns[a].speaker and bool(turns[direct].questions)


def _answers_then_asks(reply: _Turn) -> bool:
    """The direct reply opens with a statement of a few words and only then asks ("Oh dear,
    that sounds like blight. Has it been wet?", "it's on auto. how do I see the channel?"):
    it answers before it asks back."""
    opening = reply.opening
    end = _FIRST_END.search(opening)
    if end is None or end.group() == "?" or len(opening[: end.start()].split()) < 3:
        return False
    if _FILLER.match(opening):
        return False  # "Good morning and welcome to support. What is your account number?"
    asked = opening.find("?")
    # "Sorry for the wait, let me check. Can you confirm the postcode?" only holds the line.
    return _HOLDING.search(opening, 0, asked if asked >= 0 else len(opening)) is None


def _asks_first(turns: Sequence[_Turn], q: int, reply: _Turn, multiparty: bool) -> bool:
    """Whether the direct reply to question ``q``, itself a question, asks before it can
    answer: the direct reply answers even as a question ("Any questions for me?" — "Would
    I be on nights?"), but not when it clarifies ("Could you confirm the email?", "Is it
    unopened?"), greets first, comes from someone leading with questions (a tutor's next
    question after a pupil's guess), or in a group takes up none of the question's words
    (a new question: "Has anyone seen my hoodie?")."""
    question = turns[q]
    before = turns[q - 1] if q > 0 else None
    return (
        (before is not None and before.speaker == reply.speaker and bool(before.questions))
        or _CLARIFYING.search(reply.head) is not None
        or _FILLER.match(reply.opening) is not None
        or (_asks_properly(reply) and not _INVITES_QUESTIONS.search(question.head))
        or (multiparty and not question.question_content & _content_of(reply))
    )


def _echoes(question: _Turn, before: _Turn) -> bool:
    """Every question of ``question`` repeats a few words of the message before it, by
    someone else ("Four days?", "5 to 7 days?", "August in Lisbon?"): disbelief, which
    the next message does not answer as a question."""
    if before.speaker == question.speaker:
        return False
    if "?" in before.head or " or " in before.head:
        return False  # "Tuesday?" after "Tuesday or Wednesday?" picks one
    said = set(_WORD.findall(before.head))
    for asked in question.questions:
        words = [w for w in _WORD.findall(_lower(asked)) if w not in _ECHO_FILLER]
        if not 0 < len(words) <= _ECHO_WORDS or not said.issuperset(words):
            return False
        if all(w in STOPWORDS for w in words):
            return False  # "You?", "And you?": the question passed back
    return True


def _tentative_answer(reply: _Turn) -> bool:
    """A short reply whose only question is a statement with a question mark ("Summer
    too, I guess?", "It's tilted?"): an answer offered tentatively, not a new question."""
    if not reply.only_question or len(reply.text.split()) > _TENTATIVE_WORDS:
        return False
    return not _asks_properly(reply)


def _answer_cue(question: _Turn, reply: _Turn) -> bool:
    """The reply opens like an answer: "yes", "because…", "you can…", "me!"."""
    opening = reply.opening
    if _ANSWER_OPENER.match(opening) or _EXPLANATION.search(opening):
        return True
    asks_why = any(q.lower().lstrip().startswith("why") for q in question.questions)
    if asks_why and _BECAUSE.search(opening):
        return True
    return _YES_NO.match(opening) is not None and not _asks_wh(question)


def _answer_strength(question: _Turn, reply: _Turn, cue: bool, *, adjacent: bool) -> float | None:
    """Overlap and answer cues → strength; None when the reply shows neither."""
    shared = len(question.question_content & _content_of(reply))
    if shared == 0 and not cue:
        return None
    overlap = min(1.0, shared / max(1, min(len(question.question_content), 6)))
    return _clamp(0.35 + 0.35 * overlap + (0.2 if cue else 0.0) + (0.1 if adjacent else 0.0))


def _asks_properly(reply: _Turn) -> bool:
    """A question in question form ("Is the item still unopened?", "Which model?"), not a
    statement with a question mark ("Bathroom and kitchen? Those are the worst jobs.")."""
    return any(_AUX_OPENER.match(q.lower()) or _WH_START.match(q.lower()) for q in reply.questions)


def _asks_wh(question: _Turn) -> bool:
    """Every question is a wh-question, so a bare "yes"/"no" cannot answer it."""
    return all(_WH_START.match(q.lower().lstrip()) for q in question.questions)


def _qa_structure(question: _Turn, answer: _Turn, strength: float) -> dict[str, Any]:
    asked = " ".join(question.questions)
    return {
        "type": "question_answer",
        "messages": [question.index, answer.index],
        "speakers": _speakers((question, answer)),
        "excerpt": _pair_excerpt(asked, answer.text),
        "strength": _round(strength),
        "roles": {"question": question.index, "answer": answer.index},
    }


# --- Socratic chains -----------------------------------------------------------------------


def _socratic(
    turns: Sequence[_Turn], pairs: Sequence[tuple[int, int, float]], token: CancelToken
) -> list[dict[str, Any]]:
    """Chains of ≥3 question→answer pairs led by one speaker, each question building on the
    previous answer (shared content words or "so then…", "what follows if…", "and why…"),
    with answers short enough that the questioner is the one leading."""
    found: list[dict[str, Any]] = []
    chain: list[tuple[int, int, float]] = []  # (question, answer, link score)
    for position, (q, a, _) in enumerate(pairs):
        if position % _CHECK_EVERY == 0:
            token.check()
        question = turns[q]
        if chain and q < chain[-1][1]:
            continue  # another answer to a question already in the chain
        if chain and question.speaker == turns[chain[0][0]].speaker:
            last_answer = chain[-1][1]
            link = _builds_on(question, turns[last_answer])
            if q - last_answer <= 2 and link > 0:
                chain.append((q, a, link))
                continue
        if _is_socratic(turns, chain):
            found.append(_socratic_structure(turns, chain))
        chain = [(q, a, 1.0)]
    if _is_socratic(turns, chain):
        found.append(_socratic_structure(turns, chain))
    return found


def _is_socratic(turns: Sequence[_Turn], chain: Sequence[tuple[int, int, float]]) -> bool:
    if len(chain) < 3:
        return False
    asked = sum(len(turns[q].text.split()) for q, _, _ in chain)
    answered = sum(len(turns[a].text.split()) for _, a, _ in chain)
    return answered <= _SOCRATIC_ANSWER_RATIO * asked


def _builds_on(question: _Turn, answer: _Turn) -> float:
    cue = any(
        _BUILDS_ON.match(q.lower().replace("’", "'")) or _WHAT_FOLLOWS.search(q.lower())
        for q in question.questions
    )
    shared = len(question.question_content & _content_of(answer))
    return max(1.0 if cue else 0.0, min(1.0, shared / 2))


def _socratic_structure(
    turns: Sequence[_Turn], chain: Sequence[tuple[int, int, float]]
) -> dict[str, Any]:
    leader = turns[chain[0][0]]
    links = [link for _, _, link in chain[1:]]
    strength = 0.3 + 0.2 * min(1.0, (len(chain) - 2) / 4) + 0.5 * sum(links) / len(links)
    involved = sorted({position for q, a, _ in chain for position in (q, a)})
    members = [turns[p] for p in involved]
    return {
        "type": "socratic_sequence",
        "messages": [m.index for m in members],
        "speakers": _speakers(members),
        "excerpt": _pair_excerpt(
            " ".join(leader.questions), " ".join(turns[chain[-1][0]].questions)
        ),
        "strength": _round(_clamp(strength)),
        "leader": leader.speaker,
        "questions": [turns[q].index for q, _, _ in chain],
    }


def _guided_questioning(
    turns: Sequence[_Turn], found: Sequence[dict[str, Any]], token: CancelToken
) -> list[dict[str, Any]]:
    """Socratic teaching read from the turns rather than from question–answer pairs: two
    people alternate, one asks a question in each of at least three turns in a row, the
    other answers each in fewer words than the questions took (a student's answer may
    itself end in "?": "Summer too, I guess?"), and at least two of the questions build
    on the answer before them (shared words, or "so", "and", "now", "then" leading in).
    An interview, whose answers run longer than its questions, and a quiz, whose
    questions ignore the answers, do not qualify."""
    taken = [(min(f["messages"]), max(f["messages"])) for f in found]
    result: list[dict[str, Any]] = []
    position = 0
    n = len(turns)
    while position < n - 1:
        if position % _CHECK_EVERY == 0:
            token.check()
        leader = turns[position]
        if not leader.questions:
            position += 1
            continue
        chain = [position]
        links = 0
        k = position
        while k + 2 < n:
            answer, following = k + 1, k + 2
            if turns[answer].speaker == leader.speaker:
                break
            if turns[following].speaker != leader.speaker or not turns[following].questions:
                break
            if turns[answer].speaker != turns[position + 1].speaker:
                break  # one student answering throughout
            links += _leads_on(turns[following], turns[answer]) > 0
            chain.append(following)
            k = following
        answers = [q + 1 for q in chain if q + 1 < n and turns[q + 1].speaker != leader.speaker]
        asked = sum(len(turns[q].text.split()) for q in chain)
        answered = sum(len(turns[a].text.split()) for a in answers)
        start, end = chain[0], answers[-1] if answers else chain[-1]
        overlaps = any(turns[start].index <= b and turns[end].index >= a for a, b in taken)
        if len(chain) >= 3 and links >= 2 and answered <= asked and not overlaps:
            members = [turns[p] for p in range(start, end + 1)]
            result.append(
                {
                    "type": "socratic_sequence",
                    "messages": [m.index for m in members],
                    "speakers": _speakers(members),
                    "excerpt": _pair_excerpt(
                        " ".join(leader.questions), " ".join(turns[chain[-1]].questions)
                    ),
                    "strength": _round(_clamp(0.45 + 0.1 * links)),
                    "leader": leader.speaker,
                    "questions": [turns[q].index for q in chain],
                }
            )
            position = end + 1
        else:
            position += 1
    return result


_LEADS_ON = patterns.compile(r"^(?:so|and|now|then|right|good|exactly|yes|ok|okay|but)\b")


def _leads_on(question: _Turn, answer: _Turn) -> float:
    if _LEADS_ON.match(question.opening):
        return 1.0
    return _builds_on(question, answer)


# --- agreement, disagreement, correction ---------------------------------------------------


def _reactions(turns: Sequence[_Turn], token: CancelToken) -> list[dict[str, Any]]:
    """Agreement, disagreement and accepted corrections, each tied to the message it
    answers: the latest of the last three by someone else.

    The opening message has no such message; it may still push back on or correct
    something from before the transcript (a proposal, a pull request), so it can be a
    disagreement or a correction on its own, never an agreement.
    """
    found: list[dict[str, Any]] = []
    # Pairs of speakers who have just disagreed, with the position of their latest
    # disagreement: in an open argument a reply that only says "but" or negates the other's
    # words is one more round of it.
    arguing: dict[frozenset[str], int] = {}
    # Each disagreement's position → the position of the message it disputes.
    disputed: dict[int, int] = {}
    # Disagreements found only because their author held their ground, with how many such
    # rounds in a row led to them: without a cue of its own an argument is followed for
    # _HELD_ROUNDS rounds, so two people taking turns on one subject are not an endless
    # argument.
    held_rounds: dict[int, int] = {}
    for position, turn in enumerate(turns):
        if position % _CHECK_EVERY == 0:
            token.check()
        opening = turn.opening
        if arguing and min(position - last for last in arguing.values()) > _ARGUMENT_REACH:
            arguing.clear()  # the argument has died down
        cued = _may_react(opening) or any(map(turn.head.__contains__, _OFFER_HINTS))
        if not arguing and not cued:
            continue
        target = _target(turns, position)
        if target is None and position > 0:
            continue
        earlier = turns[target] if target is not None else None
        if not cued:
            # No reaction cue: only a round of the open argument can be found here.
            if earlier is not None and target is not None:
                _argument_round(turns, position, target, arguing, disputed, held_rounds, found)
            continue
        if _CORRECTION.search(opening) or _CORRECTION_OPENING.match(opening):
            corrected = earlier.speaker if earlier else _next_speaker(turns, position)
            acceptance = _acceptance(turns, position, corrected) if corrected else None
            if acceptance is not None:
                found.append(_correction_structure(turns, target, position, acceptance))
                continue
        concedes = earlier is not None and _CONCESSION.match(opening) is not None
        if concedes and not _CONCEDE_THEN_OBJECT.search(_first_clause(opening)):
            found.append(_reaction_structure("agreement", turns, target, position, 0.6))
            continue
        held = 0
        disagreement = _disagreement_strength(turn, earlier)
        if disagreement > 0 and _reports_error(turn, earlier, disagreement):
            continue
        if disagreement == 0.0 and earlier is not None:
            pair = frozenset((turn.speaker, earlier.speaker))
            in_argument = position - arguing.get(pair, -_ARGUMENT_REACH - 1) <= _ARGUMENT_REACH
            disagreement = _pushback_strength(turn, earlier, in_argument=in_argument)
            if disagreement == 0.0 and _still_arguing(turn, earlier, position, arguing):
                disagreement = 0.45
            if disagreement == 0.0 and target is not None:
                held = _held_ground(turns, position, target, disputed, held_rounds)
                disagreement = 0.45 if held else 0.0
        if disagreement > 0 and _consoles(turn, earlier):
            disagreement = 0.0  # "Nobody could have known" denies, but consoles
        if disagreement > 0:
            found.append(
                _disagreement(
                    turns, position, target, disagreement, held, arguing, disputed, held_rounds
                )
            )
            continue
        if earlier is None:
            continue
        agreement = _agreement_strength(turn, earlier)
        if agreement > 0:
            found.append(_reaction_structure("agreement", turns, target, position, agreement))
    return found


def _modelled_reactions(
    turns: Sequence[_Turn], cued: Sequence[dict[str, Any]], token: CancelToken
) -> list[dict[str, Any]]:
    """Disagreement and agreement the phrase cues missed, found by the reply model
    (``reply_model``): each reply without a cued reaction whose probability of disagreeing
    or agreeing with its target reaches the model's threshold; when both do, the one
    further past its threshold.

    Disagreement is looked for only in an argument: a conversation where the cues found
    one, or where the model is fairly sure of at least two replies
    (``reply_model.ARGUMENT_REPLIES`` from ``ARGUMENT_FROM``). A long, on-topic reply in a
    cooperative support chat or e-mail thread, or comfort that denies a self-criticism
    ("You're not useless"), can look to the model much like a rebuttal; one such reply
    does not make an argument. Elsewhere only the replies of a negotiation are read so
    (:func:`_negotiated`): the few before a proposal someone else then accepts ("That works
    for me.", "Deal."), where pushback often carries no marker word ("A full seven days is
    brutal with the pager going off at 3am").

    A reply that accepts on a condition, consoles someone who blamed themselves, answers
    consolation ("I know, but I keep replaying it") or opens in praise of what it answers
    ("That's great because…", "Love that") is never the model's disagreement, and does not
    count towards the gate. The strength is the probability, at most _MODELLED_STRENGTH, so
    a reaction only the model sees never becomes a key moment on its own."""
    position_of = {t.index: p for p, t in enumerate(turns)}
    reacted = {
        position_of[s["roles"][role]]
        for s in cued
        for role in ("response", "correction", "acceptance")
        if role in s["roles"]
    }
    reader = reply_reader(turns, cued)
    # The model reads consolation ("It's not your fault") and acceptance on a condition
    # ("If the price is fixed, I could live with it") as pushback (a negation, the other's
    # words); the writers of its examples do not, nor "I know, but I keep replaying it"
    # in answer to comfort. Consolation the cues already read counts too.
    consoling: set[int] = set()
    replies: list[tuple[int, int]] = []
    for position in range(1, len(turns)):
        if position % _CHECK_EVERY == 0:
            token.check()
        target = _target(turns, position)
        if target is None:
            continue
        if _consoles(turns[position], turns[target]):
            consoling.add(position)
        if position not in reacted:
            replies.append((position, target))
    read: list[tuple[int, int, float, float]] = []
    for position, target in replies:
        against, along = reader.probabilities(position, target)
        if (
            position in consoling
            or target in consoling
            or _accepts_on_condition(turns[position])
            or _PRAISE_OPENING.match(turns[position].opening)
        ):
            against = 0.0
        read.append((position, target, against, along))
    sure = sum(1 for *_, against, _along in read if against >= reply_model.ARGUMENT_FROM)
    arguing = reader.argued or sure >= reply_model.ARGUMENT_REPLIES
    negotiated = set() if arguing else _negotiated(turns)
    found: list[dict[str, Any]] = []
    for position, target, against, along in read:
        opened = arguing or position in negotiated
        margin_against = against / reply_model.DISAGREEMENT_FROM if opened else 0.0
        margin_along = along / reply_model.AGREEMENT_FROM
        if margin_against >= 1.0 and margin_against >= margin_along:
            kind, strength = "disagreement", against
        elif margin_along >= 1.0:
            kind, strength = "agreement", along
        else:
            continue
        found.append(
            _reaction_structure(
                kind, turns, target, position, min(strength, _MODELLED_STRENGTH), bonus=False
            )
        )
    return found


def _held_ground(
    turns: Sequence[_Turn],
    position: int,
    target: int,
    disputed: dict[int, int],
    held_rounds: dict[int, int],
) -> int:
    """How many cue-less rounds of holding one's ground, this one included, lead to the
    reply at ``position`` (0: it does not hold its ground, or the argument has been
    followed for _HELD_ROUNDS rounds already)."""
    rounds = held_rounds.get(target, 0)
    if rounds < _HELD_ROUNDS and _defends(turns, position, target, disputed):
        return rounds + 1
    return 0


def _argument_round(
    turns: Sequence[_Turn],
    position: int,
    target: int,
    arguing: dict[frozenset[str], int],
    disputed: dict[int, int],
    held_rounds: dict[int, int],
    found: list[dict[str, Any]],
) -> None:
    """The part of :func:`_reactions` for a reply without any reaction cue: one more round
    of an open argument ("But…", a negation of the other's words) or holding one's
    ground."""
    turn, earlier = turns[position], turns[target]
    held = 0
    if not _still_arguing(turn, earlier, position, arguing):
        held = _held_ground(turns, position, target, disputed, held_rounds)
        if not held:
            return
    found.append(_disagreement(turns, position, target, 0.45, held, arguing, disputed, held_rounds))


def _disagreement(
    turns: Sequence[_Turn],
    position: int,
    target: int | None,
    strength: float,
    held: int,
    arguing: dict[frozenset[str], int],
    disputed: dict[int, int],
    held_rounds: dict[int, int],
) -> dict[str, Any]:
    """A disagreement's structure, with the state of the argument it belongs to updated:
    the pair is arguing, the reply disputes its target, and how many cue-less rounds of
    holding one's ground led to it."""
    if target is not None:
        pair = frozenset((turns[position].speaker, turns[target].speaker))
        arguing[pair] = position
        disputed[position] = target
        if held:
            held_rounds[position] = held
    return _reaction_structure("disagreement", turns, target, position, strength)


def _next_speaker(turns: Sequence[_Turn], position: int) -> str | None:
    speaker = turns[position].speaker
    for later in turns[position + 1 : position + 1 + _ACCEPT_WINDOW]:
        if later.speaker != speaker:
            return later.speaker
    return None


# Every reaction pattern either opens the message or contains one of these; a substring
# scan rules out most messages several times faster than the patterns themselves.
_REACTION_HINTS = (
    "agree",
    "point",
    "right",
    "sense",
    "enough",
    "said",
    "concur",
    "true",
    "correct",
    "spot on",
    "exactly",
    "wrong",
    "false",
    "think so",
    "convinced",
    "contrary",
    "differ",
    "push back",
    "follow",
    "buy",
    "that's not",
    "that is not",
    "that isn't",
    "not quite",
    "mistake",
    "error",
    "typo",
    "should",
    "doesn't",
    "won't",
    "above",
    "afraid",
    "concern",
    "bug",
    "race",
    "problem",
    "issue",
    "breaks",
    "acceptable",
    "option",
    "feasible",
)


# The same for the rules that read past the opening sentence (a turning second sentence,
# a restriction) and for a discourse marker before a stance.
_LATER_HINTS = (
    *(" but", " however", " still", " yet", "for now", "on paper", "in theory"),
    *("in principle", "short term", "short run"),
)
_LEAD_WORDS = ("see", "look", "listen", "honestly", "well", "i mean")
# Every offer contains one of these; offers are read in the whole head of a message.
_OFFER_HINTS = (
    *("i could", "i can", "meet me", "would you", "best i can", "as low as", "as high as"),
)


def _may_react(opening: str) -> bool:
    return (
        any(map(opening.__contains__, _REACTION_HINTS))
        or any(map(opening.__contains__, _LATER_HINTS))
        or opening.startswith(_LEAD_WORDS)
        or _DENIAL.search(opening, 0, _DENIAL_CHARS) is not None
        or _PUSHBACK_OPENING.match(opening) is not None
        or _CONCESSION.match(opening) is not None
        or _pushes_back_within(_first_clause(opening))
        or _DISAGREE_OPENING.match(opening) is not None
        or _AGREE_OPENING.match(opening) is not None
        or _CORRECTION_OPENING.match(opening) is not None
    )


def _target(turns: Sequence[_Turn], position: int) -> int | None:
    """The latest of the last few messages written by someone else."""
    speaker = turns[position].speaker
    for earlier in range(position - 1, max(-1, position - 1 - _TARGET_WINDOW), -1):
        if turns[earlier].speaker != speaker:
            return earlier
    return None


def _acceptance(turns: Sequence[_Turn], position: int, corrected: str) -> int | None:
    for later in range(position + 1, min(len(turns), position + 1 + _ACCEPT_WINDOW)):
        reply = turns[later]
        if reply.speaker != corrected:
            continue
        if _ACCEPTANCE.search(reply.opening) and not _negated_at(reply.opening, _ACCEPTANCE):
            return later
        return None  # the corrected party replied without accepting
    return None


def _disagreement_strength(turn: _Turn, target: _Turn | None) -> float:
    opening = turn.opening
    strong = _DISAGREE_STRONG.search(opening)
    if strong is not None and not _negated(opening, strong.start()):
        return 0.85 if strong.start() < 40 else 0.7
    if _DISAGREE_OPENING.match(opening) and not (target and target.interrogative):
        return 0.6  # after a question, "No, …" answers it rather than disagrees
    return 0.0


def _first_clause(opening: str) -> str:
    """The opening up to the end of its second sentence: where pushback shows."""
    ends = [m.end() for m in _TERMINATOR.finditer(opening)]
    return opening[: ends[1]] if len(ends) > 1 else opening


def _pushes_back_within(clause: str) -> bool:
    return (
        any(map(clause.__contains__, PUSHBACK_ANYWHERE_HINTS))
        and _PUSHBACK_ANYWHERE.search(clause) is not None
    )


def _pushback_strength(turn: _Turn, target: _Turn, *, in_argument: bool = False) -> float:
    """Pushback without the words "I disagree": a counter-claim ("But…", "That assumes…",
    "X, not Y", "Kind of! But…"), a challenge ("Which studies?"), dismissal ("That's
    nonsense"), a claim granted only "for now" or "on paper", or a refusal or counter-offer
    in a negotiation, answering someone else's message. A question is not disputed by its
    answer, unless it proposes something ("Would you take $550?", "Thursday then?"); a
    hedged answer ("My sister, sort of. But…") turns against a question only inside an
    argument, where the question was a challenge."""
    if target.speaker == turn.speaker:
        return 0.0
    proposes = target.interrogative and _PROPOSAL_QUESTION.search(target.head) is not None
    if target.only_question and not proposes:
        return 0.0  # an answer to a question is not pushback
    opening = turn.opening
    if _PUSHBACK_OPENING.match(opening):
        return 0.55
    lead = _DISCOURSE_LEAD.match(opening)
    if lead is not None and _PUSHBACK_OPENING.match(opening, lead.end()):
        return 0.55
    if _counter_offer(turn, target):
        return 0.55
    if (not target.interrogative or proposes) and _pushes_back_within(_first_clause(opening)):
        return 0.5
    if not target.interrogative and _denies(opening, target):
        return 0.5
    turns_against = any(map(opening.__contains__, _TURNING_HINTS))
    restricts = any(map(opening.__contains__, _RESTRICTION_HINTS))
    if not turns_against and not restricts:
        return 0.0
    end = _TERMINATOR.search(opening)
    if end is not None and turns_against and (in_argument or not target.interrogative):
        second = opening[end.end() : end.end() + _OPENING_CHARS].lstrip()
        stop = _TERMINATOR.search(second)
        asks = stop is not None and second[stop.start()] == "?"
        if (
            _TURNING_SENTENCE.match(second)
            and not asks
            and not _only_courtesy(opening[: end.end()])
        ):
            return 0.5
    first = opening[: end.end()] if end else opening
    if restricts and _RESTRICTION.search(first) and _content(first) & _content_of(target):
        return 0.5
    return 0.0


# A negated auxiliary and the verb or word it negates: "I didn't 'miss' it", "it wasn't
# late". Quotation marks around the word are allowed, a second word is not read.
_DENIAL = patterns.compile(
    r"\b(?:didn't|did not|don't|do not|doesn't|does not|isn't|is not|wasn't|was not|"
    r"aren't|weren't|haven't|hasn't|never)\s{1,3}['\"‘“]?([a-z]{3,30})"
)


_DENIAL_CHARS = 80  # a denial that answers the other's words comes first


def _denies(opening: str, target: _Turn) -> bool:
    """The first sentence denies what the other said, negating the very verb or word they
    used ("You missed his appointment" — "I didn't 'miss' it"): a contradiction, the plainest
    form of disagreement. Inflections are folded ("missed" ~ "miss")."""
    if "n't" not in opening and " not " not in opening and "never" not in opening:
        return False
    end = _TERMINATOR.search(opening)
    sentence = (opening[: end.end()] if end else opening)[:_DENIAL_CHARS]
    denied = {_stem(w) for w in _DENIAL.findall(sentence)} - {_stem(w) for w in STOPWORDS}
    if not denied:
        return False
    return bool(denied & {_stem(w) for w in _content_of(target)})


def _stem(word: str) -> str:
    if word.endswith("ss"):
        return word
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word[:-1] if word.endswith("e") and len(word) > 4 else word  # "ignore" ~ "ignored"


_TURNING_HINTS = (" but", " however", " still", " yet")
_RESTRICTION_HINTS = ("for now", "on paper", "in theory", "in principle", "short")


def _only_courtesy(sentence: str) -> bool:
    """A first sentence that only thanks or greets ("Thanks!", "Hi Sam."): a "But…" after it
    starts a request or a new point rather than an objection."""
    return "thank" in sentence or _GREETING.match(sentence.strip()) is not None


def _counter_offer(turn: _Turn, target: _Turn) -> bool:
    """An offer of an amount the other side did not name, answering a message that names
    one: "I could do $750" to "Would you take $550?"."""
    if not any(map(target.head.__contains__, _CURRENCY_HINTS)):
        return False
    offer = _OFFER.search(turn.head)
    if offer is None:
        return False
    theirs = {_digits(a) for a in _AMOUNT.findall(target.head)}
    mine = {_digits(a) for a in _AMOUNT.findall(turn.head[offer.start() :])}
    return bool(theirs) and bool(mine - theirs)


_CURRENCY_HINTS = ("$", "€", "£", "euro", "dollar", "pound", "quid")


def _digits(amount: str) -> str:
    return "".join(c for c in amount if c.isdigit())


def _still_arguing(
    turn: _Turn, target: _Turn, position: int, arguing: dict[frozenset[str], int]
) -> bool:
    """Whether ``turn`` continues an argument with the author of ``target``: the two
    disagreed within the last few messages and the reply opens by countering ("But…",
    "No, …", "Still, …") or its first sentence negates the other's words."""
    last = arguing.get(frozenset((turn.speaker, target.speaker)))
    if last is None or position - last > _ARGUMENT_REACH or target.only_question:
        return False
    opening = turn.opening
    end = _TERMINATOR.search(opening)
    sentence = opening[: end.end()] if end else opening
    if _PROPOSAL.search(sentence) or _synthesis_strength(sentence) > 0.0:
        return False  # a way out of the argument, not one more round of it
    if _COURTESY.match(opening):
        return False  # "No worries, it happens."
    if _ROUND_OPENING.match(opening):
        return True
    return bool(_negated_words(sentence) & _content_of(target))


def _defends(
    turns: Sequence[_Turn], position: int, target: int | None, disputed: dict[int, int]
) -> bool:
    """Whether ``turns[position]`` holds its ground: its author's message was just disputed
    (``target`` is the disagreement, at most two messages back), and the reply stays on the
    disputed subject (shares words with the objection or with the author's own disputed
    message) without conceding, asking, proposing a way out or closing politely ("We
    already have failure modes…" to "That's a lot of new failure modes")."""
    if target is None or target not in disputed or position - target > 2:
        return False
    turn, objection, own = turns[position], turns[target], turns[disputed[target]]
    if own.speaker != turn.speaker or turn.only_question:
        return False
    opening = turn.opening
    end = _TERMINATOR.search(opening)
    sentence = opening[: end.end()] if end else opening
    if _COURTESY.match(opening) or _PROPOSAL.search(sentence) or _synthesis_strength(sentence):
        return False
    if _agreement_strength(turn, objection) > 0:
        return False
    # Words of four letters or more: the function words of other languages ("ich", "que")
    # are not in the stopword list. One such word shared with the objection answers it; a
    # reply that returns to the author's own claim restates at least two of its words.
    # Dates and figures are often what is disputed ("the 14th", "$750"): they count too.
    words = {w for w in _content_of(turn) if len(w) > 3} | _figures(turn.head)
    objected = _content_of(objection) | _figures(objection.head)
    return bool(words & objected) or len(words & _content_of(own)) > 1


_FIGURE = patterns.compile(r"\d[\d,.]{0,12}(?:st|nd|rd|th)?")


def _figures(head: str) -> set[str]:
    """Numbers, dates and amounts of a message's head, as written ("14th", "1,450")."""
    return {f.rstrip(".,") for f in _FIGURE.findall(head)}


def _reports_error(turn: _Turn, target: _Turn | None, strength: float) -> bool:
    """A person telling an assistant that the next thing broke ("Hmm, now I get TypeError…")
    continues the troubleshooting rather than opposing the assistant; an explicit "I
    disagree" still counts."""
    return (
        target is not None
        and target.role == "ai"
        and turn.role != "ai"
        and strength < 0.85
        and _ERROR_REPORT.search(turn.opening) is not None
    )


def _agreement_strength(turn: _Turn, target: _Turn) -> float:
    opening = turn.opening
    strong = _AGREE_STRONG.search(opening)
    if strong is not None and not _negated(opening, strong.start()):
        if strong.start() >= 40 and target.only_question:
            return 0.0  # "…so a reservation is a good idea": an answer that advises
        return 0.85 if strong.start() < 40 else 0.65
    weak = _AGREE_OPENING.match(opening)
    if weak is None:
        return 0.0
    if weak.group(0) in _WEAK_AGREEMENT and target.interrogative:
        return 0.0  # "Can you help?" — "Absolutely!" is compliance, not agreement
    if " but " in opening[: weak.end() + _CONCESSION_CHARS]:
        return 0.0  # "True in principle, but…" concedes a point on the way to objecting
    return 0.6


def _negated(text: str, start: int) -> bool:
    return _NEGATED.search(text[max(0, start - 24) : start]) is not None


def _negated_at(text: str, pattern: re.Pattern[str]) -> bool:
    match = pattern.search(text)
    return match is not None and _negated(text, match.start())


def _reaction_structure(
    kind: str,
    turns: Sequence[_Turn],
    target: int | None,
    position: int,
    strength: float,
    *,
    bonus: bool = True,
) -> dict[str, Any]:
    reply = turns[position]
    if target is None:
        members: tuple[_Turn, ...] = (reply,)
        roles = {"response": reply.index}
    else:
        earlier = turns[target]
        members = (earlier, reply)
        roles = {"target": earlier.index, "response": reply.index}
        if bonus and _content_of(earlier) & _content_of(reply):
            strength += 0.1
    return {
        "type": kind,
        "messages": [m.index for m in members],
        "speakers": _speakers(members),
        "excerpt": _excerpt(reply.text),
        "strength": _round(_clamp(strength)),
        "roles": roles,
    }


def _correction_structure(
    turns: Sequence[_Turn], wrong: int | None, position: int, acceptance: int
) -> dict[str, Any]:
    """``messages`` = [wrong claim, correction, acceptance]; the claim is left out when it
    came before the transcript (a reviewer's first message correcting submitted code)."""
    correction, accepted = turns[position], turns[acceptance]
    strength = 0.55
    if _STRONG_CORRECTION.search(correction.opening):
        strength += 0.15
    if acceptance == position + 1:
        strength += 0.15
    roles = {"correction": correction.index, "acceptance": accepted.index}
    members: tuple[_Turn, ...] = (correction, accepted)
    if wrong is not None:
        claim = turns[wrong]
        members = (claim, correction, accepted)
        roles = {"claim": claim.index, **roles}
        if _content_of(claim) & _content_of(correction):
            strength += 0.1
    return {
        "type": "correction",
        "messages": [m.index for m in members],
        "speakers": _speakers(members),
        "excerpt": _excerpt(correction.text),
        "strength": _round(_clamp(strength)),
        "roles": roles,
    }


# --- thesis → antithesis → synthesis -------------------------------------------------------


def _thesis_antithesis_synthesis(
    turns: Sequence[_Turn], token: CancelToken
) -> list[dict[str, Any]]:
    """A claim, an opposing reply by someone else, then a message reconciling the two.

    The reconciling message either says so ("perhaps we can combine…", "the middle
    ground…", "both…") or is a proposal the other side accepts right after ("That works.",
    "I could live with that."); either way it must share content words with both
    positions. The search starts from those rare messages and looks back for the
    antithesis: up to ``_TAS_WINDOW`` messages, or ``_TAS_REACH`` when the antithesis is an
    explicit objection ("I disagree", "however") — debates take a while to settle.
    """
    found: list[dict[str, Any]] = []
    used: set[tuple[int, int]] = set()
    accepted = _accepted_proposals(turns)
    for k, synthesis in enumerate(turns):
        if k % _CHECK_EVERY == 0:
            token.check()
        if synthesis.only_question:
            continue  # a question proposes nothing to reconcile
        reconciling = _synthesis_strength(synthesis.head)
        if reconciling < _ACCEPTED_PROPOSAL and accepted[k]:
            reconciling = _ACCEPTED_PROPOSAL
        if reconciling == 0.0 or not _content_of(synthesis):
            continue
        if _disagreement_strength(synthesis, None) > 0:
            continue  # "And I'm not convinced either; let's bring both options…" still objects
        best: tuple[float, int, int] | None = None
        for j in range(k - 1, max(-1, k - 1 - _TAS_REACH), -1):
            antithesis = turns[j]
            if antithesis.only_question:
                continue
            far = k - j > _TAS_WINDOW
            opposition = _contrast_cue(antithesis)
            if (far and opposition < 1.0) or (opposition == 0.0 and not _negated_of(antithesis)):
                continue  # cannot oppose anything: skip before comparing words
            if not _content_of(antithesis) & _content_of(synthesis):
                continue
            for i in range(j - 1, max(-1, j - 1 - _TAS_WINDOW), -1):
                thesis = turns[i]
                if thesis.speaker == antithesis.speaker or (i, j) in used:
                    continue
                if thesis.only_question or not _content_of(thesis) & _content_of(synthesis):
                    continue
                strength = _tas_strength(thesis, antithesis, synthesis, reconciling, far=far)
                if strength is not None and (best is None or strength > best[0]):
                    best = (strength, i, j)
        if best is not None and best[0] >= _MIN_TAS_STRENGTH:
            strength, i, j = best
            used.add((i, j))
            found.append(_tas_structure(turns[i], turns[j], synthesis, strength))
    return found


_ACCEPTS_PROPOSAL = patterns.compile(
    r"^(?:(?:ok|okay|yes|yeah|sure|alright|fine|vale|ja|oui|sí|si)[,.!]?\s+)?(?:that works|"
    r"that could work|works for me|i (?:could|can) live with (?:that|it)|deal|agreed|"
    r"sounds (?:good|great|fair)|(?:that )?i (?:could|can) get behind|that's fair|"
    r"sounds like a plan|fair enough|good idea|great idea|let's do (?:that|it)|"
    r"i like (?:that|it|this)|me parece (?:bien|justo)|de acuerdo|einverstanden|passt|"
    r"d'accord|vale|trato hecho)\b"
)


# Accepting terms someone else put ("That works for me.", "Deal.", "I can live with that",
# "Fair enough", "passt", "d'accord") ends a negotiation: positions were put and moved. A
# subset of _ACCEPTS_PROPOSAL without plain assent and enthusiasm ("agreed", "sounds good",
# "good idea", "I like that", "vale"), which a brainstorm or a support chat says as often;
# up to two words may lead ("Great, that works for me."), and the clause must end with the
# words, ask nothing and not go on with "but": not "That works?", "Deal, right?", "deal
# with it", "deal-breaker", "passt mir nicht", "de acuerdo con", "that could work if…",
# "fair enough, but…", "Deal. But only if…". A bare "that works" is mostly a fix that
# worked ("Thanks, that works!"), so it needs "for me".
_ACCEPTS_TERMS = patterns.compile(
    r"^(?:(?:ok|okay|yes|yeah|sure|alright|fine|great|perfect|thanks|hmm|right|then)"
    r"[,.!]?\s++){0,2}"
    r"(?:that works for (?:me|us|everyone)|works for (?:me|us)|"
    r"that(?: could| would|'d) work(?: for (?:me|us))?|"
    r"i (?:could|can) live with (?:that|it)|deal(?! (?:me|us)\b)|"
    r"(?:that )?i (?:could|can) get behind (?:that|it)|fair enough|"
    r"me parece (?:bien|justo)|de acuerdo|einverstanden|passt(?: für (?:mich|uns))?|"
    r"d'accord|trato hecho)"
    # the clause ends there, asks nothing and goes on with no "but"
    r"(?!-)(?=\s*+(?:[^\w\s]|$))(?![^.!?\n]{0,40}+\?)(?![^a-z]{0,4}+but\b)"
)
# How far before an acceptance of terms the negotiation's replies are read (_negotiated).
_NEGOTIATION_REACH = 6
# A reply that opens in praise of what it answers builds on it ("That's great because it's
# concrete", "Love that!", "Ooh, and…", "Building on that"), whatever the reply model reads
# in the rest; praise that goes on with "but", "for you" or a comma is not taken.
_PRAISE_OPENING = patterns.compile(
    r"^(?:(?:ooh|oh nice|nice|love (?:that|it|this)|that'?s (?:great|brilliant|lovely|"
    r"a (?:great|good) idea)|great idea|good idea|yes)(?:[.!]++(?:\s|$)|,? and\b| because\b)"
    r"|building on (?:that|this)\b)"
)


def _negotiated(turns: Sequence[_Turn]) -> set[int]:
    """Positions of the replies that lead up to a proposal someone accepts with terms
    (_ACCEPTS_TERMS) in one of the two messages after it, the proposal included (a
    counter-offer taken at once: "25 then, and I collect." — "Deal."): from
    _NEGOTIATION_REACH messages before the acceptance. A "Deal" closing a plan does not
    open an earlier exchange on something else. An assistant's suggestion that works
    ("Then turn off HDR." — "That works, thanks!") ends troubleshooting, not a
    negotiation."""
    found: set[int] = set()
    for later, reply in enumerate(turns):
        if _ACCEPTS_TERMS.match(reply.opening) is None:
            continue
        proposal = next(
            (k for k in (later - 1, later - 2) if k >= 0 and turns[k].speaker != reply.speaker),
            None,
        )
        if proposal is not None and turns[proposal].role != "ai":
            found.update(range(max(1, later - _NEGOTIATION_REACH), proposal + 1))
    return found


def _accepted_proposals(turns: Sequence[_Turn]) -> list[bool]:
    """For each message, whether someone else accepts it in one of the next two messages.

    Acceptances are rare, so the search starts from them and looks back.
    """
    accepted = [False] * len(turns)
    for later, reply in enumerate(turns):
        if _ACCEPTS_PROPOSAL.match(reply.opening) is None:
            continue
        for k in range(max(0, later - 2), later):
            if turns[k].speaker != reply.speaker:
                accepted[k] = True
    return accepted


def _negotiated_syntheses(
    turns: Sequence[_Turn],
    reactions: Sequence[dict[str, Any]],
    found: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Thesis → antithesis → synthesis settled by a proposal: after a disagreement
    (thesis = the message disagreed with, antithesis = the disagreement), someone proposes
    a way forward within ``_TAS_REACH`` messages and the other side accepts it in one of
    the next two ("That I could get behind", "Deal"), or one side accepts the other's
    position on a condition ("If we can lock the price, I could live with it"). The
    proposal (or the conditional acceptance) is the synthesis. It must be about what was
    disputed, sharing words with the thesis or the antithesis, and it must not itself be a
    reply that only accepts or only objects: "Find ich gut" settles nothing new, and "Hmm,
    that's unfair to you" reopens the question."""
    accepted = _accepted_proposals(turns)
    by_index = {t.index: p for p, t in enumerate(turns)}
    reaction_of = {
        by_index[r["roles"]["response"]]: r["type"] for r in reactions if "response" in r["roles"]
    }
    covered = _covered(found)
    result: list[dict[str, Any]] = []
    conditions: dict[int, bool] = {}  # position → accepts the other side on a condition
    for thesis, antithesis, sides in _disputes(turns, reactions, by_index, covered):
        disputed = _content_of(turns[thesis]) | _content_of(turns[antithesis])
        for k in range(antithesis + 1, min(len(turns), antithesis + 1 + _TAS_REACH)):
            proposal = turns[k]
            if k not in conditions:
                conditions[k] = _accepts_on_condition(proposal)
            conditional = proposal.speaker in sides and conditions[k]
            if not accepted[k] and not conditional:
                continue
            if proposal.only_question and not _PROPOSAL.search(proposal.opening):
                continue  # "What if we…?" proposes; "Which day?" does not
            if not _content_of(proposal) & disputed:
                continue  # "Let's rewatch it together" ends the talk, not the dispute
            kind = reaction_of.get(k)
            if kind == "agreement" or (
                kind == "disagreement" and not _PROPOSAL.search(proposal.opening)
            ):
                continue
            acceptance = next(
                (
                    j
                    for j in range(k + 1, min(len(turns), k + 3))
                    if turns[j].speaker != proposal.speaker
                    and _ACCEPTS_PROPOSAL.match(turns[j].opening)
                ),
                None,
            )
            if acceptance is None and not conditional:
                continue
            members = tuple(turns[p] for p in (thesis, antithesis, k, acceptance) if p is not None)
            roles = {
                "thesis": turns[thesis].index,
                "antithesis": turns[antithesis].index,
                "synthesis": proposal.index,
            }
            if acceptance is not None:
                roles["acceptance"] = turns[acceptance].index
            result.append(
                {
                    "type": "thesis_antithesis_synthesis",
                    "messages": [m.index for m in members],
                    "speakers": _speakers(members),
                    "excerpt": _excerpt(proposal.text),
                    "strength": _round(_ACCEPTED_PROPOSAL),
                    "roles": roles,
                }
            )
            covered.update(range(turns[thesis].index, members[-1].index + 1))
            break
    return result


def _covered(found: Sequence[dict[str, Any]]) -> set[int]:
    """Messages inside a structure already found: a debate is reported once."""
    return {i for f in found for i in range(min(f["messages"]), max(f["messages"]) + 1)}


def _disputes(
    turns: Sequence[_Turn],
    reactions: Sequence[dict[str, Any]],
    by_index: Mapping[int, int],
    covered: set[int],
) -> Iterator[tuple[int, int, set[str]]]:
    """(thesis, antithesis, the two sides) of each disagreement, by position, that lies
    outside ``covered``; the caller adds to ``covered`` as it reports debates."""
    for reaction in reactions:
        if reaction["type"] != "disagreement" or "target" not in reaction["roles"]:
            continue
        thesis = by_index[reaction["roles"]["target"]]
        antithesis = by_index[reaction["roles"]["response"]]
        if covered.intersection(range(turns[thesis].index, turns[antithesis].index + 1)):
            continue
        yield thesis, antithesis, {turns[thesis].speaker, turns[antithesis].speaker}


def _agreed_proposals(
    turns: Sequence[_Turn],
    reactions: Sequence[dict[str, Any]],
    found: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Thesis → antithesis → synthesis told by the reactions themselves: after a
    disagreement, within _AGREED_REACH messages, someone makes an offer or a proposal
    ("What if we do tiers?", "920, last offer", "instead, …") and one of the two disputing
    sides agrees with it. The reactions may come from the cues or the reply model; the
    proposal must read as one, so plain agreement later in a long argument settles nothing.
    """
    by_index = {t.index: p for p, t in enumerate(turns)}
    agreements = sorted(
        (by_index[r["roles"]["target"]], by_index[r["roles"]["response"]])
        for r in reactions
        if r["type"] == "agreement" and "target" in r["roles"]
    )
    objections = {
        by_index[r["roles"]["response"]] for r in reactions if r["type"] == "disagreement"
    }
    covered = _covered(found)
    result: list[dict[str, Any]] = []
    ordered = sorted(reactions, key=lambda r: r["roles"].get("response", -1))
    for thesis, antithesis, sides in _disputes(turns, ordered, by_index, covered):
        # Agreements are sorted by the message agreed with: only those within reach.
        settled: tuple[int, int] | None = None
        for target, acceptance in itertools.islice(
            agreements, bisect.bisect_right(agreements, (antithesis, len(turns))), None
        ):
            if target >= antithesis + _AGREED_REACH:
                break
            if acceptance > antithesis + _AGREED_REACH or turns[acceptance].speaker not in sides:
                continue
            proposal = _proposal_before(
                turns, thesis, antithesis, target, turns[acceptance].speaker, objections
            )
            if proposal is not None:
                settled = (proposal, acceptance)
                break
        if settled is None:
            continue
        proposal, acceptance = settled
        members = tuple(turns[p] for p in (thesis, antithesis, proposal, acceptance))
        result.append(
            {
                "type": "thesis_antithesis_synthesis",
                "messages": [m.index for m in members],
                "speakers": _speakers(members),
                "excerpt": _excerpt(turns[proposal].text),
                "strength": _round(_AGREED_PROPOSAL),
                "roles": {
                    "thesis": turns[thesis].index,
                    "antithesis": turns[antithesis].index,
                    "synthesis": turns[proposal].index,
                    "acceptance": turns[acceptance].index,
                },
            }
        )
        covered.update(range(turns[thesis].index, turns[acceptance].index + 1))
    return result


def _proposal_before(
    turns: Sequence[_Turn],
    thesis: int,
    antithesis: int,
    target: int,
    accepter: str,
    objections: set[int],
) -> int | None:
    """The way forward an agreement accepts, after the antithesis and never the
    accepter's own: the message it answers; past the accepter's question about a proposal
    and its answer ("Does the 3,450 include consumables?" — "Yes, all included" —
    "Deal"), that proposal; or the message before the one it answers, when that one
    objects to nothing. A way forward found past the message answered must be about what
    was disputed, sharing words with the thesis or the antithesis: "I'm getting 2 pots at
    5" settles no argument about colours."""
    asked = target - 1 > antithesis and turns[target - 1].speaker == accepter
    if asked and turns[target - 1].questions and target - 1 not in objections:
        candidates = [target - 2]  # the answer informs; the proposal is what is accepted
    elif target in objections or _DISAGREE_OPENING.match(turns[target].opening):
        candidates = [target]  # agreeing with a rejection accepts nothing before it
    else:
        candidates = [target, target - 1]
    disputed = _content_of(turns[thesis]) | _content_of(turns[antithesis])
    for k in candidates:
        if k <= antithesis or turns[k].speaker == accepter:
            continue
        head = turns[k].head
        if not _WAY_FORWARD.search(head, 0, _WAY_FORWARD_CHARS):
            continue
        if k == target or _content_of(turns[k]) & disputed:
            return k
        if _EXPLICIT_WAY_FORWARD.search(head, 0, _WAY_FORWARD_CHARS):
            return k  # "What about Priya instead?" names no word of the dispute
    return None


# A way forward: a proposal (_PROPOSAL), a compromise, an alternative, an offer, a figure.
_EXPLICIT_WAY_FORWARD = patterns.compile(
    _PROPOSAL.pattern + r"|\b(?:compromise|split|meet (?:in the|you)|halfway|instead|"
    r"alternat|deal|would you|i can do|i could do|what about|middle ground)"
)
_WAY_FORWARD = patterns.compile(_EXPLICIT_WAY_FORWARD.pattern + r"|\d")
_WAY_FORWARD_CHARS = 300
_AGREED_REACH = 6
_AGREED_PROPOSAL = 0.6


# Accepting the other side's position on a condition: "If we can lock the price for three
# years, I could live with HubSpot", "I'd go with Ben as long as Marta can contract".
_CONDITIONAL_ACCEPTANCE = patterns.compile(
    r"(?:(?:ok|okay|well|fine|alright)[,.]?\s{1,3})?(?:if|as long as|so long as|provided)\b"
    r"[^.?!]{1,150}?,\s{0,3}(?:then\s{1,3})?(?:i|we)(?:'d| would| could| can)(?: probably)?"
    r" (?:live with|accept|go (?:with|for|along with)|agree|support|get behind|"
    r"be (?:fine|ok|okay|happy) with)\b"
    r"|(?:i|we)(?:'d| would| could| can) (?:live with|accept|go with|agree to|support)"
    r"[^.?!]{0,80}? (?:if|as long as|so long as|provided)\b"
)


# Consolation contradicts the other's self-blame without pushing back on anything: "It
# wasn't your fault", "Nobody could have known", "Don't beat yourself up". A reply that
# also turns ("…, but a Friday rollout is a terrible idea") still argues.
_CONSOLATION = patterns.compile(
    r"\b(?:(?:it|that|this)(?:'s| is| was)(?: not|n't) (?:on you|your fault)|not your fault|"
    r"no need to apologi[sz]e|nothing (?:you|anyone) could(?:'ve| have) done|"
    r"(?:nobody|no one|no-one|you) could(?:n't|'ve| have| not)(?: have)? (?:known|seen it|done)|"
    r"(?:don't|do not|stop) blam(?:e|ing) yourself|(?:don't|do not|stop) beat(?:ing)? yourself|"
    r"don't be (?:so )?hard on yourself|(?:be kind to|go easy on) yourself|"
    r"you(?:'re| are) not alone(?! in\b)|not (?:something )?you (?:need|have) to carry)"
    r"(?![^\w.!]{0,3}\?)"  # not "Not your fault? It was your config change."
)
_TURNS = patterns.compile(r"\b(?:but|however|though|although|yet|except)\b")
# Blaming oneself, said in so many words: "I should have called him", "I feel awful", "I'm
# so sorry I missed your recital", "I wasn't even there". Any first-person word is not
# enough: "I'm telling you, your team's deploy took down checkout" blames the other side.
_SELF_BLAME = patterns.compile(
    r"\b(?:sorry|apologi[sz]e|my (?:fault|bad|mistake)|blame myself|if only i|"
    r"(?:i|i'm|i am|i feel|i felt) (?:so |really |such |just )?(?:awful|terrible|guilty|"
    r"horrible|bad|stupid|useless|an idiot|a failure|the worst|a burden|a (?:bad|terrible|"
    r"awful|rubbish|crap|useless|horrible) \w{2,20}+|pathetic|hopeless|worthless|selfish)|"
    r"(?:i|we) (?:should(?:'ve| have|n't have| not have)|could(?:'ve| have))|"
    r"i (?:ruined|broke|forgot|lost|missed|messed up|screwed up|failed|let)|"
    r"i (?:wasn't|was not) (?:even )?there)\b"
)


# Comfort that denies the very word someone called themselves: "I'm useless" — "You're not
# useless"; "I'm a terrible friend" — "you're not a terrible friend, you're exhausted".
_DENIED_LABEL = patterns.compile(
    r"\byou(?:'re| are)(?: not|n't) (?:(?:so|that|really|a|an|the|being) )?"
    r"(?:(?:bad|terrible|awful|rubbish|crap|horrible) )?([^\W\d_]{3,20}+)"
)


# Words of a self-blame that are no label to deny: "I'm sorry" — "You're not sorry, you just
# don't check your work" is an accusation.
_NOT_A_SELF_LABEL = frozenset(
    "sorry apologise apologize apologising apologizing really such just feel felt".split()  # noqa: SIM905
)
# A denial that goes on to accuse is no comfort: "You're not useless, you never test".
_ACCUSES = patterns.compile(r"\byou (?:never|always|keep|constantly)\b")


def _consoles(turn: _Turn, target: _Turn | None) -> bool:
    """Whether a reply consoles someone who blamed themselves: "I missed the signs" —
    "It wasn't your fault", "I'm useless" — "You're not useless". Said to an accusation
    ("It was your team's fault" — "Nobody could have known, it was the vendor") the same
    words defend."""
    if target is None:
        return False
    head = turn.head
    if _TURNS.search(head) is not None or _ACCUSES.search(head) is not None:
        return False
    blamed = [found.group(0) for found in _SELF_BLAME.finditer(target.head)]
    if not blamed:
        return False
    if _CONSOLATION.search(head) is not None:
        return True
    labels = {word for found in blamed for word in found.split()} - _NOT_A_SELF_LABEL
    return any(denied.group(1) in labels for denied in _DENIED_LABEL.finditer(head))


def _accepts_on_condition(turn: _Turn) -> bool:
    opening = turn.opening
    if not any(map(opening.__contains__, ("if ", "as long as", "provided"))):
        return False
    return _CONDITIONAL_ACCEPTANCE.match(opening) is not None


_SYNTHESIS_HINTS = (
    "both",
    "combin",
    "middle",
    "together",
    "compromise",
    "balance",
    "reconcil",
    "hybrid",
    "between",
    "depend",
    "either way",
    "in some cases",
    "perhaps we",
    "maybe we",
    "each has",
)


def _synthesis_strength(head: str) -> float:
    if not any(map(head.__contains__, _SYNTHESIS_HINTS)):
        return 0.0  # a substring scan is far cheaper than the patterns below
    if _SYNTHESIS_STRONG.search(head):
        return 1.0
    if _SYNTHESIS_WEAK.search(head):
        return 0.5
    return 0.0


def _tas_strength(
    thesis: _Turn, antithesis: _Turn, synthesis: _Turn, synthesis_cue: float, *, far: bool
) -> float | None:
    claim = _claim(thesis)
    shared = _content_of(thesis) & _content_of(antithesis)
    if claim == 0.0 or not shared:
        return None
    contrast = _contrast(antithesis, shared)
    if contrast == 0.0 or (far and contrast < 1.0):
        return None
    words = _content_of(synthesis)
    bridge = len(words & _content_of(thesis)) + len(words & _content_of(antithesis))
    return _clamp(
        0.2 + 0.2 * claim + 0.25 * contrast + 0.2 * synthesis_cue + 0.15 * min(1.0, bridge / 4)
    )


def _claim(turn: _Turn) -> float:
    """1 for an explicit stance ("I think…", "clearly…"), 0.5 for a plain assertion."""
    if turn.claim is None:
        head = turn.head
        turn.claim = 1.0 if _CLAIM.search(head) else 0.5 if _DECLARATIVE.search(head) else 0.0
    return turn.claim


def _contrast(turn: _Turn, thesis_terms: frozenset[str]) -> float:
    """Opposition cues, or a negation within three words before one of the thesis's terms."""
    cue = _contrast_cue(turn)
    if cue == 1.0:
        return 1.0
    if _negated_of(turn) & thesis_terms:
        return 0.8
    return cue


def _contrast_cue(turn: _Turn) -> float:
    """1 for explicit opposition ("however", "I disagree"), 0.6 for "but"/"although"."""
    if turn.contrast is None:
        head = turn.head
        strong = any(map(head.__contains__, _CONTRAST_HINTS)) and _CONTRAST_STRONG.search(head)
        turn.contrast = 1.0 if strong else 0.6 if _CONTRAST_WEAK.search(head) else 0.0
    return turn.contrast


def _negated_of(turn: _Turn) -> frozenset[str]:
    if turn.negated is None:
        turn.negated = _negated_words(turn.head)
    return turn.negated


def _negated_words(head: str) -> frozenset[str]:
    tokens = _WORD.findall(head)
    negated: set[str] = set()
    for position, word in enumerate(tokens):
        if word in _NEGATORS:
            negated.update(tokens[position + 1 : position + 4])
    return frozenset(negated)


def _tas_structure(
    thesis: _Turn, antithesis: _Turn, synthesis: _Turn, strength: float
) -> dict[str, Any]:
    members = (thesis, antithesis, synthesis)
    return {
        "type": "thesis_antithesis_synthesis",
        "messages": [m.index for m in members],
        "speakers": _speakers(members),
        "excerpt": _excerpt(synthesis.text),
        "strength": _round(strength),
        "roles": {
            "thesis": thesis.index,
            "antithesis": antithesis.index,
            "synthesis": synthesis.index,
        },
    }


# --- small shared pieces -------------------------------------------------------------------


def _speakers(turns: Iterable[_Turn]) -> list[str]:
    seen: dict[str, None] = {}
    for turn in turns:
        seen.setdefault(turn.speaker, None)
    return list(seen)


def _pair_excerpt(first: str, second: str) -> str:
    """ "first → second" within 200 characters, each side masked and cut at a word."""
    left = _excerpt(first, 110)
    return f"{left} → {_excerpt(second, 197 - len(left))}"


def _excerpt(text: str, limit: int = 200) -> str:
    """``text.excerpt`` of a long message without collapsing and masking all of it.

    The start of the message is enough when, masked, it runs well past ``limit``: the
    excerpt ends at ``limit``, and a personal-data span cut in two by taking the start
    lies beyond it.
    """
    if len(text) > _EXCERPT_SOURCE_CHARS:
        start = mask_pii(" ".join(text[:_EXCERPT_SOURCE_CHARS].split()))
        if len(start) >= limit + _PII_MAX_CHARS:
            return excerpt(start, limit)
    return excerpt(text, limit)


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _round(value: float) -> float:
    return round(value, 4) + 0.0
