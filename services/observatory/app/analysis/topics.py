"""Topics: keyphrases and topic segments of a conversation.

Keyphrases are scored by TF-IDF over messages. Candidates are runs of one to three
content words not broken by punctuation or a stopword, taken from each message's prose
(code blocks, inline code, logs and shell output removed, and identifiers such as
``getElementById`` skipped) so code does not dominate. The counting is done here with
numpy and scipy rather than scikit-learn's ``TfidfVectorizer``, whose analyzer builds
every n-gram string in Python per document: at 10,000 messages of 100 words that alone
takes seconds. Here each distinct token is classified once, n-grams are integer codes
built with vectorised arithmetic, and counts are sparse matrices; the scores are the
smooth TF-IDF ``tf · (ln((1 + n) / (1 + df)) + 1)`` that scikit-learn uses.

Segments follow TextTiling (Hearst, 1997) over the message sequence: at every gap
between messages the cosine similarity of the TF-IDF vectors of the ``k`` messages
before and after it is computed (banded sparse products, no per-message loops over
pairs), the curve is lightly smoothed, and gaps whose depth score — how far the
similarity dips below the nearest peaks on both sides — clears a cutoff become
boundaries, deepest first, keeping every segment at least ``min_len`` messages long.
"""

from __future__ import annotations

import bisect
import math
import re
import string
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from app.analysis.text import STOPWORDS, plain_apostrophes, strip_code
from app.conversation import Conversation
from app.conversation.labels import is_line_label
from app.core import patterns
from app.core.cancellation import NEVER, CancelToken

_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~“”‘’«»…–—"
_WORDLIKE = patterns.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*")
_IDENTIFIER = patterns.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
# Inline code of up to four plain words (`pip install requests`, `kubectl`) names the
# subject; anything with code punctuation (`df.merge(on=...)`) is stripped as code.
_PLAIN_INLINE = patterns.compile(r"`([A-Za-z][A-Za-z0-9-]*(?: [A-Za-z0-9-]+){0,3})`")
# Words common to conversations on any subject: greetings, discourse markers, number and
# time words, generic verbs and judgements. They break phrases like stopwords do. Also
# the commonest function words of Spanish, French and German, which appear in mixed
# conversations.
_GENERIC = frozenset(
    """
    actually anyway basically honestly hi hello hey bye sorry lets ask asked asking keep kept
    mean means meant first second third one two three four five six seven eight nine ten
    hundred thousand million bad better best good great nice happy new old big small lot
    day days week weeks time times today tomorrow yesterday morning afternoon evening night
    minute minutes hour hours year years month months thing stuff idea bit part start
    started try tried call called help helps helped work worked working need needed want
    wanted know knew think thought tell told look looks looking feel felt come came going
    sound sounds different same sure fine true definitely probably maybe course
    de la el los las que en un una por para con del al le les et du des der die das und ist
    nicht ein eine zu mit
    literally haha lol lmao omg guys folks user users assistant human system bot chatbot
    ich habe hab bin du er sie wir ihr es ja nein auch aber oder noch schon mal doch nur
    wenn dann dass wie was gut guten tag danke bitte für auf aus bei nach von vom zum zur
    im am den dem einen einem einer mein dein sein ihre unser heute jetzt hier da
    yo tú tu te me mi se lo nos es está están estoy soy son fue ser estar hay muy más menos
    bien mal sí pero como cuando donde porque qué quién cada mes mejor peor todo todos nada
    algo vale hola gracias ya también aquí eso esto este esta ese esa
    je il elle nous vous ils sont suis pas ne oui non mais ou donc car avec sur dans pour
    par ce cette ces mon ton son très merci bonjour
    ça chez moi toi lui leur plus aussi alors tout tous rien quoi est était être ai fait
    faire vais bonsoir salut buenas buenos tardes días noches mir dir uns euch
    il lo gli un uno di da con su tra fra che chi cosa dove quando perché sì si ci ne ti vi
    ho hai ha abbiamo avete hanno sei è siamo era fa già anche ancora poi più molto tanto
    tutto tutti questo questa quello quella mio tuo suo nostro buongiorno buonasera ciao
    grazie prego allora bene va
    o os um umas do dos das na nas em não sim eu ele ela nós vocês eles elas meu minha teu
    tua seu sua são estão foi ter tem tenho há mais também já ainda isso isto essa aquele
    aqui então mas ou obrigado obrigada olá bom boa vai vou faz fazer
    pls plz tbh idk imo ngl yep yup nope hmm ugh dude gonna wanna gotta
    hast haben habt bis machen macht neue neuen neu ende erster zweiter dritter
    letzter nächste nächster sehr immer nie wieder viel viele mehr kein keine keinen sind
    waren wird werden kann können muss müssen soll sollen würde könnte diese dieser dieses
    alle alles etwas nichts gerade eigentlich sondern weil ob über unter vor seit gegen
    ohne um durch des ins beim vielleicht einfach genau morgen gestern
    c'est c'était j'ai toujours bon bien veux veut peux peut faut fois encore jamais déjà
    trop peu chacun chacune quelque quelques aujourd'hui demain hier comme qui que quand
    où comment pourquoi toute toutes mes tes ses nos vos leurs au aux une le on d'accord
    voilà vraiment juste cela celui celle veuille voudrais pourrais avez avons ont
    puedo puede puedes quiero quieres tengo tiene tienes hacer hace hago voy vas vamos
    dijo dije dicho ahora hoy mañana ayer siempre nunca otro otra otros mucho mucha poco
    tanto sobre entre hasta desde así entonces bueno claro pues mis tus
    nuestro nuestra su ella él ellos ellas usted ustedes ayudarle atiende
    posso puoi può fai faccio fatto detto dire sono stato essere avere ma per
    come se non nel nella alla delle degli mia tua sua loro lui noi voi oggi
    domani ieri sempre mai ecco dai vero poco troppo qui qua niente nulla qualcosa
    gente oi você pra para com pelo pela muito muita hoje amanhã ontem agora aí
    lá tá né vamos pode posso quero acho sei ser estar está estou ficar fica tudo coisa
    outro outra mesmo onde quando como porque quem qual esse este esta nosso nossa dele
    dela siete bonne journée argomento cambiando tema sujet thema
    """.split()  # noqa: SIM905 - a word list reads better than quoted strings
)
# Words that may be keywords but do not name a subject, so never label one: judgements,
# common verbs and adjectives, time words, family roles.
_NOT_A_LABEL = frozenset(
    """
    last actual half clearly listed badly bother bring brings brought chance asks anymore
    everyone anyone people point question answer kind sort pretty little whole fair
    happen happens happened happening ready quick quickly soon later earlier tonight
    weekend monday tuesday wednesday thursday friday saturday sunday january february
    march april june july august september october november december mum dad mom reply
    message messages said say tell let lets able glad love like loved really awesome cool
    perfect amazing wonderful brilliant lovely super exactly totally agree disagree read
    choose wait waiting close apart far available case careful cutting longer bigger
    smaller higher lower real full free easy hard wrong worth check checked mind guess hope
    wish btw lighter reminder anyway alright promise unrelated quick sorry
    lunes martes miércoles jueves viernes sábado domingo enero febrero marzo abril
    junio julio agosto septiembre octubre noviembre diciembre lundi mardi mercredi jeudi
    vendredi samedi dimanche janvier février avril mai juin juillet août septembre
    octobre novembre décembre montag dienstag mittwoch donnerstag freitag samstag sonntag
    januar februar märz juni juli august dezember oktober lunedì martedì mercoledì
    giovedì venerdì sabato domenica gennaio febbraio aprile maggio giugno luglio
    settembre ottobre dicembre segunda terça quarta sexta janeiro fevereiro março
    maio junho julho setembro outubro novembro dezembro
    """.split()  # noqa: SIM905
)
# Adverbs ("clearly", "badly") and past participles ("listed", "modelled") describe rather
# than name a subject; a label is made of nouns. Short words and "-eed" words ("need",
# "speed", "bed") are nouns often enough to keep.
_MODIFIER_FORM = patterns.compile(r"^[a-z]{2,}(?:ly|[^e]ed)$")
# Verb forms that rarely name a subject, never a label's last word ("Page, blank, died",
# "Coming, speaking"). Most other "-ing" words are subjects ("wedding", "planning").
_VERB_FORMS = frozenset(
    """
    died dies dying coming going getting thinking considering changing doing making taking
    saying trying wondering hoping asking telling complaining failing
    """.split()  # noqa: SIM905
)
_CHUNK = 256
_GAP_BLOCK = 512
# np.unique sorts; above this many values the sort is split by value range so the token
# is checked between parts (one sort of a few million codes takes most of a second).
_SORT_BLOCK = 1 << 17
_MIN_PHRASE_COUNT = 2
_KEYPHRASES = 10
_SEGMENT_KEYWORDS = 5
_MAX_SEGMENTS = 50
_FIRST_MESSAGES = 5
# Boundary cutoffs, checked against the hand-labelled conversations in tests/fixtures/eval
# (topic boundary F1 0.875 and Pk 0.02 at ±2 messages, against 0.67 and 0.29 with
# Hearst's cutoff alone): a depth of at least _MIN_DEPTH, which keeps a conversation on
# one subject, whose dips are all shallow, in one segment; and no segmentation at all
# below _MIN_MESSAGES messages.
_MIN_DEPTH = 0.3
_CUTOFF_SD = 0.5
_RELATIVE_DEPTH = 0.5
_STATISTICAL_FROM = 5
_MIN_MESSAGES = 16
# Where a sentence may start inside a message's head: after an end of sentence, a dash,
# an emoji or a smiley, and a space. The announcement pattern is tried there and at the
# start (one search with a lookbehind at every character cost twice as much).
_SENTENCE_GAP = patterns.compile(r"[.!?…—\u2600-\u27bf\ufe0f\U0001F300-\U0001FAFF] |[:;][)D] ")
# An announced change of subject starts a segment whatever the words do. The leading runs
# are bounded and possessive, so a long run of ". " is read once. It is only matched at
# the start of a head or after a gap's space, so it cannot start after anything else
# ("(?<!\S)"): a scan of a long run then rejects most places at their first character.
_TOPIC_CHANGE = patterns.compile(
    r"(?<!\S)\W{0,8}+(?:(?:right|ok|okay|so|anyway|oh|and|alright|now)\W{1,4}+)?"
    r"(?:[^\W\d_][\w'-]{1,20}+,\s)?"  # a name called first: "Sophie, separate thing, …"
    r"(?:(?:in other|some (?:happier|sadder|other|more)|other|big|happier|sadder) "
    r"news\b|news from\b|on a (?:lighter|different|happier|sadder|serious|brighter) note|"
    r"(?:also |oh |totally |completely )?random,? but|oh,? also\b|also(?=!)|"
    r"before we (?:wrap|finish|close)\b|now (?:for )?the (?:boring|fun|hard) (?:bit|part)|"
    r"(?:slight|small|little) problem though|quick one(?=[,:])|"
    r"while (?:i'?ve|i have) got you|while (?:everyone'?s|everyone is|we'?re all) here|"
    r"while (?:[^\W\d_][\w'-]{1,20}(?:'s| is)) not (?:in this chat|here|around)|"
    r"(?:another|different|separate|more important|unrelated) question(?=[:,])|"
    r"anyway(?:[.!]{1,3}\s|,\s(?=[^.!?\n]{0,80}\?))|who'?s up for\b|"
    r"has anyone (?:thought about|started (?:organising|organizing|planning))\b|"
    r"last one,\s(?!promise|i promise|sorry|then\b)(?:the )?[\w'-]{2,24}(?=\.)|"
    r"(?!(?:you|me|him|her|them|us|who|whos|what|mine|yours)\s)[^\W\d_][\w-]{1,20} next(?=[.:])|"
    r"(?:i'?ve got|i have|we'?ve got|we have) (?:some )?(?:news|big news)\b|"
    r"random (?:one|question|thought)|changing (?:the )?(?:subject|topic)|"
    r"(?:first|second|third|fourth|next|last) (?:item|point)(?=[,:.])|"
    r"(?:erster|zweiter|dritter|nächster|letzter) punkt|"
    r"(?:primer|segundo|tercer|siguiente|último) punto|(?:primo|secondo|terzo|prossimo|ultimo) punto|"
    r"(?:premier|deuxième|troisième|prochain|dernier) point|"
    r"(?:primeiro|segundo|terceiro|próximo|último) ponto|"
    r"(?:totally|completely) unrelated|"
    r"et sinon|grosse nouvelle|por cierto|cambiando argomento|altra cosa|a proposito|andere frage|"
    r"(?:hat )?nichts damit zu tun|au fait|mudando de assunto|outra coisa|"
    r"(?:also|oh|and),? (?:totally |completely |slightly )?(?:unrelated|off[- ]topic)|"
    r"(?:on )?(?:a |an )?(?:totally |completely |something )?(?:different|other|another|"
    r"unrelated|separate) (?:note|topic|subject|thing|question)|moving on|"
    r"next (?:item|topic|point|up)\b|next thing(?=[,:.])|last (?:item\b|(?:thing|point)(?=[,:]))|"
    r"new topic|"
    r"one more(?: question| thing)?(?=:)|any other business|aob\b|"
    r"unrelated|off[- ]topic|btw|by the way|before i forget|also,? (?:quick|one more)|"
    r"one more thing|cambiando de tema|otra cosa|anderes thema|übrigens|autre chose|"
    # "speaking of quizzes, …": the subject named after it is a new one ("speaking of
    # which" stays on the current one).
    r"speaking of(?! (?:which|whom|that|this|it|them)\b)"
    r")\b",
    re.IGNORECASE,
)
# News announced in the middle of a sentence: "Before the last questions I need to tell
# you something."
_TELLING = "to tell"  # a substring test first: most messages do not hold it
_TOPIC_CHANGE_INSIDE = patterns.compile(
    r"\b(?:i|we) (?:need|have|want) to tell (?:you|everyone|you all) something\b", re.IGNORECASE
)
# An agenda marker heading a message ("Next: the offsite.", "Floodlights. Pete, you've had
# the quotes?", "So, the role.", "offsite: venue's booked", "now, dinner: pasta or
# curry?"); inside a message "Next:" is more often the next question of the same quiz.
_AGENDA = patterns.compile(
    r"\W{0,8}(?:next(?: up| item| topic)?|item \d{1,2})\s{0,2}:"
    r"|(?P<lead>(?:so|ok|okay|right|now|and),? (?:the )?)?(?P<heading>[^\W\d_][\w'-]{2,24}"
    r"(?: [\w'-]{1,24}){0,2}?)(?: next)?(?P<end>\.|:)(?:\s|$)",
    re.IGNORECASE,
)
# A short first sentence and its first word: "Good, 14th with the flag. ". The first word
# is looked at (within _FIRST_WORD_CHARS) before the pattern runs.
_FIRST_WORD_CHARS = 16
_PUNCTUATION = string.punctuation + "¿¡«»—–…"
_FIRST_SENTENCE = patterns.compile(r"\W{0,3}+(?P<word>[^\W\d_]{1,12}+)[^.!?\n]{0,30}+[.!?]{1,3}+ ")
# A heading names a subject: no verb or pronoun of a clause ("So Thursday is out.").
_CLAUSE_WORDS = frozenset(
    "is are was were be been it it's that that's this i i'm you we they he she do does".split()  # noqa: SIM905
)
# The chair turns to someone with a question: "Floodlights. Pete, you've had the quotes?"
_ADDRESSED_QUESTION = patterns.compile(r"\s{0,3}[A-Z][\w'-]{1,24}, [^?\n]{1,100}\?")
# A heading is a subject, not an answer or an acknowledgement ("Done. …", "Fine. …").
_NOT_HEADINGS = frozenset(
    """
    done fine ok okay perfect great sure yes yep yeah no nope right thanks thank cool nice
    lovely noted agreed true exactly deal sorry hmm well so anyway good brilliant amazing
    wow oh ah haha lol hi hey hello morning update note also then honestly seriously
    absolutely totally definitely same correct wrong true false maybe probably indeed
    weird wait oops cheers evening afternoon night ugh argh whoa yikes damn please look
    listen see alright yo omg wtf asap fyi btw imo imho tbh edit ps plan summary recap
    conclusion decision verdict compromise kompromiss ha hah heh ooh aw aww phew
    """.split()  # noqa: SIM905
)
# An opening that only greets or offers help names no subject.
_SERVICE_OPENING = patterns.compile(
    r"\b(?:how (?:can|may) i help|what can i do for you|how can we help|you'?re (?:chatting|"
    r"speaking) with|thanks? for (?:contacting|calling|getting in touch|reaching out))\b",
    re.IGNORECASE,
)
_LABEL_IDF = 0.25
_LABEL_POOL = 12
# Whoever opens a subject names it ("Still on for the hike Saturday?", "thoughts on today's
# interviews?"); later messages talk about its details. Words of a segment's opening
# messages count this many times more towards its label.
_OPENING_MESSAGES = 1
_OPENING_WEIGHT = 3.0
# Label candidates that follow a determiner somewhere in a segment's first characters are
# nouns, and count this many times more.
_NOUN_BONUS = 2.0
_NOUN_CHARS = 4000
_DETERMINED = patterns.compile(
    r"\b(?:the|a|an|my|our|your|his|her|their|this|these|those|el|la|los|las|un|una|"
    r"der|die|das|den|dem|ein|eine|einen|le|les|une)\s{1,3}([^\W\d_]{2,30})"
    r"(?:\s([^\W\d_]{2,30}))?(?:\s([^\W\d_]{2,30}))?"
)
_MIN_ANNOUNCED = 3  # messages on each side of an announced change
_ANNOUNCE_CHARS = 120  # the announcement opens the message or its second sentence
_SMOOTH_FROM = 30
_MIN_WINDOW_WORDS = 16


def _window(n: int) -> int:
    """Messages per side of a gap: about √n / 2, between 3 and 10. Two messages a side
    proved too noisy: one off-topic reply already looked like a topic change."""
    return max(3, min(10, round(math.sqrt(n) / 2)))


class _Vocabulary:
    """Codes for raw tokens, built incrementally as the conversation is read.

    A token's code is ``(word id + 1) * 4 + breaks_before * 2 + breaks_after``; word id −1
    marks a token that is not a content word (a stopword, number, symbol or code
    identifier), and punctuation before or after a token breaks a phrase there. Word ids
    are provisional (order of first appearance) until :meth:`finish` maps them to
    alphabetical ranks, merging plurals into singulars the conversation also uses.
    """

    def __init__(self, excluded: frozenset[str] = frozenset()) -> None:
        self.codes: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.excluded = excluded

    def encode(self, tokens: list[str]) -> np.ndarray:
        # Provisional ids follow set order, but finish() ranks words alphabetically, so
        # nothing downstream depends on it.
        for w in set(tokens).difference(self.codes):
            self.codes[w] = self._code(w)
        return np.fromiter(map(self.codes.__getitem__, tokens), dtype=np.int32, count=len(tokens))

    def _code(self, w: str) -> int:
        core = w.strip(_PUNCT)
        flags = (2 if core != w and w[0] in _PUNCT else 0) + (
            1 if core != w and w[-1] in _PUNCT else 0
        )
        word = core.lower()  # the prose's apostrophes are plain already
        if word.endswith("'s"):
            word = word[:-2]
        if (
            1 < len(word) <= 30
            and word not in STOPWORDS
            and word not in _GENERIC
            and word not in self.excluded
            and (word.isalpha() or _WORDLIKE.fullmatch(word) is not None)
            and (core.islower() or _IDENTIFIER.search(core) is None)
        ):
            return (self.ids.setdefault(word, len(self.ids)) + 1) * 4 + flags
        return flags

    def finish(self) -> tuple[np.ndarray, list[str]]:
        """The final id of each provisional id, and the words by final id."""
        found = set(self.ids)
        canonical = [_singular(word, found) for word in self.ids]
        words = sorted(set(canonical))
        rank = {word: i for i, word in enumerate(words)}
        remap = np.array([rank[c] for c in canonical], dtype=np.int32)
        return remap, words


def _singular(word: str, vocabulary: set[str]) -> str:
    """``word``'s singular when the conversation also uses it ("containers" → "container",
    "queries" → "query"); otherwise ``word`` unchanged."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        if word.endswith("ies") and word[:-3] + "y" in vocabulary:
            return word[:-3] + "y"
        if word.endswith("es") and word[:-2] in vocabulary:
            return word[:-2]
        if word[:-1] in vocabulary:
            return word[:-1]
    return word


class _Counts:
    """Sparse message × phrase counts, the phrases as word-id tuples, the words, and the
    number of whitespace-separated tokens of each message's prose."""

    def __init__(
        self,
        matrix: Any,
        phrases: list[tuple[int, ...]],
        words: list[str],
        lengths: list[int],
    ) -> None:
        self.matrix = matrix
        self.phrases = phrases
        self.words = words
        self.lengths = lengths

    def text(self, f: int) -> str:
        return " ".join(self.words[w] for w in self.phrases[f])


def _count_phrases(
    prose: Sequence[str], token: CancelToken, excluded: frozenset[str] = frozenset()
) -> _Counts:
    n = len(prose)
    vocabulary = _Vocabulary(excluded)
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    # Read in chunks and keep only integer codes: the token strings of a long
    # conversation would take ten times its size.
    for start in range(0, n, _CHUNK):
        token.check()
        tokens: list[str] = []
        for text in prose[start : start + _CHUNK]:
            toks = text.split()
            tokens.extend(toks)
            lengths.append(len(toks))
        chunks.append(vocabulary.encode(tokens))
    remap, words = vocabulary.finish()
    token.check()
    codes = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    del chunks
    provisional = codes // 4 - 1
    wid = np.full(len(codes), -1, dtype=np.int32)
    known = provisional >= 0
    wid[known] = remap[provisional[known]]
    del provisional, known
    msg = np.repeat(np.arange(n, dtype=np.int32), lengths)
    content = wid >= 0
    joins = (
        content[:-1]
        & content[1:]
        & ((codes[:-1] & 1) == 0)  # no punctuation after the first word
        & ((codes[1:] & 2) == 0)  # nor before the second
        & (msg[:-1] == msg[1:])
    )
    del codes

    v = max(len(words), 1)
    starts_by_size = [np.flatnonzero(content)]
    if len(wid) > 1:
        starts_by_size.append(np.flatnonzero(joins))
    if len(wid) > 2 and v < 2_000_000:  # v³ must fit in int64
        starts_by_size.append(np.flatnonzero(joins[:-1] & joins[1:]))
    del content, joins
    phrases: list[tuple[int, ...]] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    data: list[np.ndarray] = []
    offset = 0
    for size, starts in enumerate(starts_by_size, start=1):
        token.check()
        code = np.zeros(len(starts), dtype=np.int64)
        for k in range(size):
            code = code * v + wid[starts + k]
        if size == 1:
            uniq, inverse, counts = _unique_ids(code, v)
        else:
            uniq, inverse, counts = _unique(code, token)
        del code
        if size > 1:
            # Phrases of two or three words must recur to count as phrases.
            keep = counts >= _MIN_PHRASE_COUNT
            selected = keep[inverse]
            inverse = (np.cumsum(keep) - 1)[inverse[selected]]
            starts = starts[selected]
            uniq = uniq[keep]
        token.check()
        # Word ids of each phrase, first word first: the base-v digits of its code.
        digits = [(uniq // v ** (size - 1 - k)) % v for k in range(size)]
        phrases.extend(zip(*(d.tolist() for d in digits), strict=True))
        # Count each (message, phrase) once here, so the sparse matrix is built from
        # distinct entries rather than one entry per occurrence.
        width = max(len(uniq), 1)
        pairs, _, per_pair = _unique(msg[starts].astype(np.int64) * width + inverse, token)
        rows.append((pairs // width).astype(np.int32))
        cols.append((pairs % width + offset).astype(np.int32))
        data.append(per_pair.astype(np.float64))
        offset += len(uniq)
    token.check()
    matrix = sp.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, max(offset, 1)),
    )
    return _Counts(matrix, phrases, words, lengths)


def _unique_ids(ids: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True, return_counts=True)`` for ids in [0, v),
    by counting instead of sorting."""
    counts = np.bincount(ids, minlength=v)
    present = counts > 0
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present), rank[ids], counts[present]


def _unique(values: np.ndarray, token: CancelToken) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True, return_counts=True)``, sorted a value range
    at a time when ``values`` is long, with the token checked between ranges."""
    if len(values) <= _SORT_BLOCK:
        return np.unique(values, return_inverse=True, return_counts=True)
    parts = -(-len(values) // _SORT_BLOCK)
    # Range bounds from a sorted sample: each range holds about _SORT_BLOCK values.
    sample = np.sort(values[:: max(1, len(values) // (parts * 64))])
    bounds = np.unique(sample[(np.arange(1, parts) * len(sample)) // parts])
    uniq: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    inverse = np.empty(len(values), dtype=np.intp)
    found = 0
    for lo, hi in pairwise([None, *bounds.tolist(), None]):
        token.check()
        inside = np.ones(len(values), dtype=bool)
        if lo is not None:
            inside &= values >= lo
        if hi is not None:
            inside &= values < hi
        part_uniq, part_inverse, part_counts = np.unique(
            values[inside], return_inverse=True, return_counts=True
        )
        inverse[inside] = part_inverse + found
        found += len(part_uniq)
        uniq.append(part_uniq)
        counts.append(part_counts)
    return np.concatenate(uniq), inverse, np.concatenate(counts)


def _idf(matrix: Any, n: int) -> np.ndarray:
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    result: np.ndarray = np.log((1 + n) / (1 + df)) + 1
    return result


def _length_weight(counts: _Counts) -> np.ndarray:
    # A recurring two- or three-word phrase names a subject better than either word
    # alone ("connection pool" over "pool"), so longer phrases get a modest boost.
    sizes = np.fromiter(map(len, counts.phrases), dtype=np.float64, count=len(counts.phrases))
    if len(sizes) < counts.matrix.shape[1]:
        sizes = np.concatenate([sizes, np.ones(counts.matrix.shape[1] - len(sizes))])
    result: np.ndarray = 1 + 0.5 * (sizes - 1)
    return result


def _top_phrases(counts: _Counts, scores: np.ndarray, limit: int) -> list[int]:
    """Best phrases by score (ties alphabetical), without repeating a phrase's words: a
    phrase inside one already chosen is skipped, and a longer phrase replaces a chosen
    phrase it contains."""
    candidates = np.flatnonzero(scores > 0)
    if len(candidates) == 0:
        return []
    # Enough candidates to fill ``limit`` after removing overlaps, best first.
    pool = candidates[np.argsort(-scores[candidates], kind="stable")][: limit * 8]
    ordered = sorted(pool.tolist(), key=lambda f: (-round(float(scores[f]), 9), counts.text(f)))
    chosen: list[int] = []
    for f in ordered:
        phrase = counts.phrases[f]
        if any(_contains(counts.phrases[c], phrase) for c in chosen):
            continue
        chosen = [c for c in chosen if not _contains(phrase, counts.phrases[c])]
        chosen.append(f)
        if len(chosen) == limit:
            break
    return chosen


def _contains(outer: tuple[int, ...], inner: tuple[int, ...]) -> bool:
    m = len(inner)
    return any(outer[i : i + m] == inner for i in range(len(outer) - m + 1))


def _similarities(
    x: Any, k: int, gaps: np.ndarray | None = None, token: CancelToken = NEVER
) -> np.ndarray:
    """Cosine similarity, for each gap ``g`` (between messages g−1 and g; all gaps, or
    those in ``gaps``), of the summed vectors of the ``k`` messages before and the ``k``
    messages after it.

    Window sums are banded sparse products, computed for a block of gaps at a time: for
    a whole long conversation they would hold k times its vocabulary twice over.
    """
    n = x.shape[0]
    wanted = np.arange(1, n) if gaps is None else np.asarray(gaps, dtype=np.int64) + 1
    result = np.zeros(len(wanted))
    offsets = np.arange(k)
    for first in range(0, len(wanted), _GAP_BLOCK):
        token.check()
        block = wanted[first : first + _GAP_BLOCK]
        rows = np.repeat(np.arange(len(block)), k)
        before_cols = (block[:, None] - 1 - offsets[None, :]).ravel()
        after_cols = (block[:, None] + offsets[None, :]).ravel()
        valid_b = before_cols >= 0
        valid_a = after_cols < n
        shape = (len(block), n)
        before = sp.csr_matrix(
            (np.ones(int(valid_b.sum())), (rows[valid_b], before_cols[valid_b])), shape=shape
        )
        after = sp.csr_matrix(
            (np.ones(int(valid_a.sum())), (rows[valid_a], after_cols[valid_a])), shape=shape
        )
        wb = before @ x
        wa = after @ x
        dot = np.asarray(wb.multiply(wa).sum(axis=1)).ravel()
        denom = np.sqrt(_row_squares(wb) * _row_squares(wa))
        result[first : first + len(block)] = np.divide(
            dot, denom, out=np.zeros_like(dot), where=denom > 0
        )
    return result


def _row_squares(m: Any) -> np.ndarray:
    owner = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    result: np.ndarray = np.bincount(owner, weights=m.data * m.data, minlength=m.shape[0])
    return result


def _depths(sim: np.ndarray) -> np.ndarray:
    """TextTiling depth score of each gap: (left peak − sim) + (right peak − sim), where a
    peak is the highest point reached climbing monotonically from the gap."""
    n = len(sim)
    values = sim.tolist()
    left = [0.0] * n
    for i in range(n):
        left[i] = values[i] if i == 0 or values[i - 1] < values[i] else max(left[i - 1], values[i])
    right = [0.0] * n
    for i in range(n - 1, -1, -1):
        right[i] = (
            values[i] if i == n - 1 or values[i + 1] < values[i] else max(right[i + 1], values[i])
        )
    result: np.ndarray = np.asarray(left) + np.asarray(right) - 2 * sim
    return result


def _boundaries(
    sim: np.ndarray, fine: Callable[[np.ndarray], np.ndarray], min_len: int
) -> list[int]:
    """Start indices of segments after the first, ascending.

    ``sim`` is the gap similarity with the full window, used to find and rank valleys;
    ``fine`` gives the same with half the window for the gaps asked, used to place each
    boundary: a wide window sees a change clearly but blurs where it happens.
    """
    n_gaps = len(sim)
    total = n_gaps + 1
    if total < _MIN_MESSAGES or n_gaps < 2 * min_len - 1:
        return []
    # Smoothing steadies long similarity curves; on short ones it moves the valleys.
    smooth = (
        np.convolve(np.pad(sim, 1, mode="edge"), np.ones(3) / 3, mode="valid")
        if n_gaps >= _SMOOTH_FROM
        else sim
    )
    depth = _depths(smooth)
    # Valleys: gaps not above either neighbour, away from the ends, where the windows are
    # cut short and similarity drops for lack of text rather than a change of subject.
    padded = np.pad(smooth, 1, mode="constant", constant_values=np.inf)
    valley = (smooth <= padded[:-2]) & (smooth <= padded[2:])
    valley[: min_len - 1] = False
    valley[max(0, n_gaps - min_len + 1) :] = False
    candidates = _plateau_centres(np.flatnonzero(valley & (depth > 0)), smooth)
    if not candidates:
        return []
    d = depth[candidates]
    # Hearst's cutoff (mean plus half a standard deviation of the valley depths) needs
    # enough valleys to be meaningful; with fewer than five, keep valleys at least half
    # as deep as the deepest.
    if len(d) >= _STATISTICAL_FROM:
        cutoff = max(_MIN_DEPTH, float(d.mean() + _CUTOFF_SD * d.std()))
    else:
        cutoff = max(_MIN_DEPTH, _RELATIVE_DEPTH * float(d.max()))
    order = sorted(candidates, key=lambda g: (-round(float(depth[g]), 12), g))
    reach = max(1, min_len // 2)
    chosen: list[int] = []
    for g in order:
        if depth[g] < cutoff or len(chosen) == _MAX_SEGMENTS - 1:
            break
        window = np.arange(max(min_len - 1, g - reach), min(n_gaps - min_len + 1, g + reach + 1))
        if len(window):
            near = fine(window).tolist()
            g = min(
                zip(window.tolist(), near, strict=True),
                key=lambda item: (round(item[1], 12), abs(item[0] - g), item[0]),
            )[0]
        start = g + 1  # gap g lies between messages g and g + 1
        if all(abs(start - e) >= min_len for e in (0, *chosen, total)):
            chosen.append(start)
    return sorted(chosen)


def _enough_words(x: Any, start: int, k: int) -> bool:
    """Whether the ``k`` messages on the two sides of the gap before ``start`` hold, on
    average, at least _MIN_WINDOW_WORDS different content words a side. TextTiling compares
    blocks of text (Hearst used blocks of a fixed number of words); three chat messages of
    "Wed works", "Wed 👍" hold too few words for a dip in their similarity to mean a change
    of subject. The sum is taken because a subject often ends on a few short messages
    ("Made it!", "Glad to hear it!") before the next one opens at length."""
    before = (np.asarray((x[max(0, start - k) : start] > 0).sum(axis=0)).ravel() > 0).sum()
    after = (np.asarray((x[start : start + k] > 0).sum(axis=0)).ravel() > 0).sum()
    return bool(before + after >= 2 * _MIN_WINDOW_WORDS)


def _plateau_centres(gaps: np.ndarray, values: np.ndarray) -> list[int]:
    """``gaps`` with each run of adjacent gaps of equal value replaced by its centre, so a
    stretch of zero similarity puts its boundary in the middle, not at its first gap."""
    out: list[int] = []
    run: list[int] = []
    for g in gaps.tolist():
        if run and g == run[-1] + 1 and values[g] == values[run[-1]]:
            run.append(g)
            continue
        if run:
            out.append(run[len(run) // 2])
        run = [g]
    if run:
        out.append(run[len(run) // 2])
    return out


def _names_a_subject(phrase: str) -> bool:
    words = phrase.split()
    return (
        not any(w in _NOT_A_LABEL for w in words)
        and words[-1] not in _VERB_FORMS
        and not _MODIFIER_FORM.search(words[-1])
    )


def _noun_heads(prose: Sequence[str], start: int, end: int) -> frozenset[str]:
    """Words that follow a determiner, alone or after one or two modifiers ("the hike",
    "a blank page", "los tickets"), in the first _NOUN_CHARS characters of a segment: nouns,
    which is what a label is made of. Verbs ("write"), adjectives ("brown") and names
    called out ("Chicos, …") do not follow one."""
    found: set[str] = set()
    budget = _NOUN_CHARS
    for text in prose[start:end]:
        if budget <= 0:
            break
        piece = text[:budget].lower()
        budget -= len(piece)
        for match in _DETERMINED.finditer(piece):
            found.update(w for w in match.groups() if w)
    return frozenset(found)


def _is_marked(counts: _Counts, f: int, marked: frozenset[str]) -> bool:
    word = counts.words[counts.phrases[f][-1]]
    return word in marked or word + "s" in marked or word + "es" in marked


def _label(phrases: list[str]) -> str:
    if not phrases:
        return "general"
    text = ", ".join(phrases[:3] if len(phrases[0].split()) == 1 else phrases[:2])
    return text[0].upper() + text[1:]


def _announced_changes(
    prose: Sequence[str], starts: Sequence[int], speakers: frozenset[str]
) -> list[int]:
    """Messages that announce a new subject ("Random one: …", "Great. Moving on — …"), at least
    _MIN_ANNOUNCED messages from the start and from every other segment start. A subject
    announced in words ("totally different subject, …") may close the conversation in two
    messages, or in one that asks; an agenda heading needs _MIN_ANNOUNCED messages after it.
    At most _MAX_SEGMENTS segments in all."""
    n = len(prose)
    found: list[int] = []
    taken = sorted(starts[1:])
    for i in range(_MIN_ANNOUNCED, n):
        head = prose[i][:_ANNOUNCE_CHARS]
        if not head:
            continue
        said = _announces(head) or (
            _TELLING in head.lower() and _TOPIC_CHANGE_INSIDE.search(head) is not None
        )
        if not said:
            if n - i < _MIN_ANNOUNCED or not _heads_an_item(head, speakers):
                continue
        elif n - i < 2 and "?" not in head:
            continue  # a closing "btw, great job!" signs off; it opens no subject
        # Starts ascend, so the nearest start at or after i and the latest one before it
        # are all that can be too close.
        after = bisect.bisect_left(taken, i)
        near = taken[after - 1 : after + 1] if after else taken[:1]
        if all(abs(i - s) >= _MIN_ANNOUNCED for s in near):
            bisect.insort(taken, i)
            found.append(i)
            if len(taken) >= _MAX_SEGMENTS - 1:
                break
    return found


def _announces(head: str) -> bool:
    """Whether a sentence of ``head`` opens with an announcement of a new subject."""
    if _TOPIC_CHANGE.match(head):
        return True
    for gap in _SENTENCE_GAP.finditer(head):  # noqa: SIM110 - faster than any() with a generator
        if _TOPIC_CHANGE.match(head, gap.end()):
            return True
    return False


def _heads_an_item(head: str, speakers: frozenset[str]) -> bool:
    """Whether an agenda heading opens the message ("So, the role.", "Next: the
    offsite."), or its second sentence after an acknowledgement ("Ha. Right, the
    renewal.")."""
    if _is_agenda_heading(_AGENDA.match(head), head, speakers):
        return True
    start = _after_acknowledgement(head)
    return start > 0 and _is_agenda_heading(_AGENDA.match(head, start), head, speakers)


def _is_agenda_heading(agenda: re.Match[str] | None, head: str, speakers: frozenset[str]) -> bool:
    return agenda is not None and (agenda["heading"] is None or _is_heading(agenda, head, speakers))


def _after_acknowledgement(head: str) -> int:
    """Where a message's second sentence starts when its first only acknowledges ("Ha.",
    "Good, 14th with the flag.", "Noted."): an agenda heading may follow it ("Ha. Right,
    the renewal."). 0 otherwise."""
    first = head[:_FIRST_WORD_CHARS].split(maxsplit=1)
    if not first or first[0].strip(_PUNCTUATION).lower() not in _NOT_HEADINGS:
        return 0  # cheaper than the pattern, and most messages stop here
    end = _FIRST_SENTENCE.match(head)
    if end is None or end["word"].lower() not in _NOT_HEADINGS:
        return 0
    return end.end()


def _is_heading(agenda: re.Match[str], head: str, speakers: frozenset[str]) -> bool:
    """Whether a short opening sentence heads a new item: a subject, not an answer, that
    ends in a colon ("offsite: venue's booked"), is written in capitals ("ACTIVITIES."),
    follows "so, the" ("So, the role."), or is followed by a question to someone
    ("Floodlights. Pete, you've had the quotes back?")."""
    heading = agenda["heading"]
    words = heading.lower().split()
    if (
        words[0] in _NOT_HEADINGS
        or words[0] in STOPWORDS
        or is_line_label(words[0])
        or is_line_label(" ".join(words))
        or _CLAUSE_WORDS.intersection(words)
        or any(c.isdigit() for c in heading)
        or heading.lower() in speakers
    ):
        return False
    if agenda["end"] == ":":
        # "offsite: venue's booked", "now, dinner: pasta or curry?"; a capitalised
        # "Traceback:" or "Ben:" inside a message is a label or a name.
        return agenda["lead"] is not None or heading[0].islower()
    return (
        (heading.isupper() and len(heading) >= 5)
        or (agenda["lead"] is not None and "the" in agenda["lead"].lower())
        or _ADDRESSED_QUESTION.match(head, agenda.end()) is not None
    )


def _opener(messages: Sequence[Any], prose: Sequence[str], start: int, end: int) -> int:
    """The message that opens a segment's subject: its first, unless that one only greets
    or offers help ("Hi, you're chatting with Priya. How can I help today?") or is empty
    (a system prompt), in which case the next one that says something."""
    for k in range(start, min(end, start + 3)):
        if prose[k].strip() and not _SERVICE_OPENING.search(prose[k][:_ANNOUNCE_CHARS]):
            return k
    return start


def _speaker_words(conversation: Conversation) -> frozenset[str]:
    """Words of the speakers' names: who speaks is not what they speak about."""
    words: set[str] = set()
    for name in conversation.speakers:
        for part in _WORDLIKE.findall(name.lower()):
            words.add(part)
            words.add(part + "s")
    return frozenset(words)


def analyze_topics(conversation: Conversation, token: CancelToken = NEVER) -> dict[str, Any]:
    """Keyphrases and topic segments (``patterns.topics`` of the result)."""
    messages = conversation.messages
    n = len(messages)
    if n == 0:
        return {"segments": [], "keyphrases": [], "transitions": []}
    prose: list[str] = []
    for start in range(0, n, _CHUNK):
        token.check()
        for m in messages[start : start + _CHUNK]:
            if m.role == "system":
                prose.append("")  # instructions to a model are not what the people discuss
                continue
            text = _PLAIN_INLINE.sub(r"\1", m.text) if "`" in m.text else m.text
            prose.append(plain_apostrophes(strip_code(text)))
    counts = _count_phrases(prose, token, _speaker_words(conversation))
    # Shares count every word written, code included; most messages are all prose, and
    # their tokens were just counted.
    word_counts = [
        length if own is m.text else len(m.text.split())
        for m, own, length in zip(messages, prose, counts.lengths, strict=True)
    ]
    matrix = counts.matrix
    idf = _idf(matrix, n)
    weight = _length_weight(counts)
    tf = np.asarray(matrix.sum(axis=0)).ravel()
    token.check()

    top = _top_phrases(counts, tf * idf * weight, _KEYPHRASES)
    token.check()
    csc = matrix.tocsc()
    token.check()
    keyphrases = [
        {
            "phrase": counts.text(f),
            "score": round(float(tf[f] * idf[f] * weight[f] / max(tf.sum(), 1.0)), 4),
            "messages": sorted(csc.indices[csc.indptr[f] : csc.indptr[f + 1]].tolist())[
                :_FIRST_MESSAGES
            ],
        }
        for f in top
    ]

    unigrams = np.array(
        [len(p) == 1 for p in counts.phrases] + [False] * (matrix.shape[1] - len(counts.phrases))
    )
    k = _window(n)
    min_len = max(3, k)
    starts = [0]
    if n >= 2 * min_len:
        token.check()
        x = matrix[:, np.flatnonzero(unigrams)].multiply(idf[unigrams]).tocsr()
        token.check()
        half = max(2, k // 2)
        similarity = _similarities(x, k, token=token)
        token.check()
        found = _boundaries(similarity, lambda gaps: _similarities(x, half, gaps), min_len)
        starts += [b for b in found if _enough_words(x, b, k)]
    token.check()
    announced = _announced_changes(
        prose, starts, frozenset(name.lower() for name in conversation.speakers)
    )
    if announced:
        starts = sorted({*starts, *announced})

    total_words = max(sum(word_counts), 1)
    prefix_words = np.concatenate([[0], np.cumsum(word_counts)])
    edges = [*starts, n]
    segment_rows = np.repeat(np.arange(len(starts)), np.diff(edges))
    seg_counts = (
        sp.csr_matrix((np.ones(n), (segment_rows, np.arange(n))), shape=(len(starts), n)) @ matrix
    )
    seg_idf = _idf(seg_counts.tocsr(), len(starts)) if len(starts) > 1 else np.ones(len(idf))
    segments = []
    for s, (a, b) in enumerate(pairwise(edges)):
        token.check()
        row = np.asarray(seg_counts[s].todense()).ravel()
        chosen = _top_phrases(counts, row * idf * seg_idf * weight, _SEGMENT_KEYWORDS)
        keywords = [counts.text(f) for f in chosen]
        # A label names what the segment keeps coming back to, so it leans less on rarity.
        opener = _opener(messages, prose, a, b)
        opening = np.asarray(matrix[opener : opener + _OPENING_MESSAGES].sum(axis=0)).ravel()
        label_scores = (row + _OPENING_WEIGHT * opening) * idf**_LABEL_IDF * seg_idf * weight
        named = _top_phrases(counts, label_scores, _LABEL_POOL)
        marked = _noun_heads(prose, a, b)
        named.sort(
            key=lambda f: -label_scores[f] * (_NOUN_BONUS if _is_marked(counts, f, marked) else 1)
        )
        nouns = [counts.text(f) for f in named if _names_a_subject(counts.text(f))]
        segments.append(
            {
                "label": _label(nouns),
                "keywords": keywords,
                "start": a,
                "end": b - 1,
                "share": round(float(prefix_words[b] - prefix_words[a]) / total_words, 4),
            }
        )
    return {"segments": segments, "keyphrases": keyphrases, "transitions": starts[1:]}
