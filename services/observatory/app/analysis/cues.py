"""Word lists and phrase cues for tone and reactions, kept apart from the detectors that
use them so the detectors read as logic.

Every list here is general: words and phrasings of hostility, complaint, sarcasm,
pushback and concession as people write them in chats, reviews and meetings. None names
a particular product, place or conversation.
"""

from __future__ import annotations

# --- tone: single words -----------------------------------------------------------------

# Insults and dismissal that VADER's social-media lexicon weighs lightly or not at all:
# "Your product is garbage", "That's nonsense", "You're twisting this". Values on VADER's
# −4..4 scale.
HOSTILE_WORDS: dict[str, float] = {
    "garbage": -2.4,
    "trash": -2.2,
    "rubbish": -2.2,
    "nonsense": -2.4,
    "ridiculous": -2.4,
    "absurd": -2.2,
    "pathetic": -2.8,
    "clueless": -2.2,
    "incompetent": -2.6,
    "useless": -2.4,
    "twisting": -1.6,
    "patronising": -2.2,
    "patronizing": -2.2,
    "condescending": -2.2,
    "propaganda": -1.6,
    "gutted": -2.4,
    "infuriating": -2.8,
    "unacceptable": -2.4,
    "frustrating": -2.4,
    "frustrated": -2.2,
    "ärgerlich": -2.0,
    "unfair": -2.0,
    "panicking": -2.2,
    "dread": -2.2,
    "ugh": -2.0,
    "idiots": -2.3,
    "shambles": -2.2,
}

# Informal praise and dismay of chats that VADER's lexicon lacks: "Legend 🙌", "Legendary
# cake", "I'm chuffed", "so bummed", "yikes".
CHAT_WORDS: dict[str, float] = {
    "legend": 2.2,
    "legendary": 2.4,
    "chuffed": 2.4,
    "stoked": 2.4,
    "bummed": -2.0,
    "knackered": -1.2,
    "yikes": -1.2,
    "oof": -1.0,
}

# The commonest words of feeling in Spanish, German and French, which people mix into
# English chats ("Eres la mejor", "qué mal", "Es ist wirklich ärgerlich"); VADER's lexicon
# is English only.
OTHER_LANGUAGE_WORDS: dict[str, float] = {
    # Spanish
    "gracias": 1.6,
    "mejor": 1.6,
    "genial": 2.2,
    "perfecto": 2.0,
    "encanta": 2.6,
    "guay": 1.8,
    "crack": 1.6,
    "increíble": 2.4,
    "buenísimo": 2.4,
    "feliz": 2.4,
    "mal": -1.8,
    "fatal": -2.2,
    "pena": -1.6,
    "triste": -2.0,
    "horrible": -2.6,
    "odio": -2.6,
    "mierda": -2.6,
    "noooo": -1.4,
    "uf": -1.0,
    # German
    "danke": 1.6,
    "toll": 2.2,
    "prima": 1.8,
    "klasse": 2.0,
    "schön": 1.8,
    "super": 2.0,
    "versprochen": 1.0,
    "schade": -1.6,
    "leider": -1.0,
    "schlecht": -2.0,
    "nervig": -2.0,
    "blöd": -2.0,
    "furchtbar": -2.6,
    "schrecklich": -2.6,
    "unfair": -2.0,
    # French
    "merci": 1.6,
    "génial": 2.2,
    "parfait": 2.0,
    "bravo": 2.0,
    "dommage": -1.6,
    "nul": -2.0,
    "énervant": -2.0,
    "déçu": -2.0,
    "déçue": -2.0,
}

# Reaction emoji whose names in VADER's emoji table carry no tone ("thumbs up", "folded
# hands", "raising hands") or the wrong one ("fire" for praise): in chats they approve,
# thank, celebrate or show exasperation. Values on VADER's −4..4 scale.
EMOJI_VALENCE: dict[str, float] = {
    "👍": 1.5,
    "👌": 1.5,
    "🙌": 1.8,
    "👏": 1.8,
    "🤝": 1.2,
    "🙏": 1.2,
    "💪": 1.2,
    "🔥": 1.5,
    "😅": 0.5,  # "grinning face with sweat": awkward or nervous, not joy
    "🥳": 2.4,
    "👎": -1.5,
    "🙄": -1.5,
    "🤦": -1.5,
    "😤": -1.8,
    "😡": -2.4,
    "😠": -2.2,
    # faces VADER reads from their names as neutral or even positive ("pensive face")
    "😒": -1.5,
    "😔": -1.2,
    "😣": -1.2,
    "😖": -1.5,
    "😑": -0.5,
    "🤬": -2.6,
    "😥": -0.6,  # "sad but relieved face" by name, sad in use
}

# Words that name a subject more often than a feeling: a proposal to "ban cars" or
# "restrict them", "cancer screening", "killer brownies", "work has been insane", "no
# spoilers", "the support team" (or a stance: "I'd support that"). They keep a tenth of
# their lexicon valence.
TOPIC_WORDS = frozenset(
    """
    ban bans banned banning cancer cancers tumour tumor disease illness killer mad insane
    crazy worst mess pain kill kills spoiler spoilers spoil worried worries worry limitation
    limitations broke struggled struggling isolated shame dentist debt tax taxes war weapon
    weapons gun guns crime crimes restrict restricts restricted restricting restriction
    restrictions support
    credit credits interest grant grants value values bonus bonuses number numbers courtesy
    matter supports supported agreement alert worth ready care fan approved promised
    festival festivals join joins hand hands promise promises interests kinder qt 2qt await
    awaits awaiting
    """.split()  # noqa: SIM905 - a word list reads better than quoted strings
)
# Lexicon words that in conversation are mostly degree adverbs or discourse markers:
# "pretty frustrating", "honestly, it's annoying". VADER rates them +2.2 and +2.0, which
# turns polite frustration positive; without a value of their own "pretty" boosts the
# word after it, as VADER's booster list has it.
DISCOURSE_WORDS = frozenset({"pretty", "honestly", "frankly", "literally"})
# Words that soften the word after them in a request: "make it less sad", "fewer
# errors". The negative word is what the speaker wants less of, not what they feel.
SOFTENERS = frozenset({"less", "fewer", "avoid", "without", "reduce", "stop"})

# --- tone: phrases --------------------------------------------------------------------

# Each phrase below counts as one more sentence of the message: complaint told as facts,
# polite frustration, exasperation and open hostility.
# Questions that are indignation, not requests ("Who does that?", "What was he even
# watching?"): a complaint for the tone, and no question to answer. Each use says where
# the question must end, so "Who does that belong to?" stays a question.
INDIGNANT_QUESTIONS = (
    r"who (?:even )?(?:does|would do) (?:that|this)|"
    r"what (?:was|is|were|are) (?:he|she|they|you) even (?:thinking|doing|watching|looking at)"
)
NEGATIVE_PHRASES = (
    # hostility aimed at the other party or their argument
    r"you'?re (?:twisting|missing the point|not listening|being ridiculous|just wrong)",
    r"you'?re all missing",
    r"(?:^|[.!?,] )(?:just |would you |will you |can you )?(?:shut up|screw you|piss off)\b"
    r"(?!,? (?:that'?s|this is|no way|really)\b)",
    r"(?:your|this|that) (?:argument|point|logic|claim) is (?:weak|flawed|nonsense|absurd)",
    r"(?:that'?s|this is|what) (?:a )?(?:ridiculous|absurd|lazy|cheap|sweeping)",
    r"that was a cheap shot|cheap shot",
    r"here we go again",
    r"give me a break|spare me|how dare",
    r"(?:i'?m|i am) not attacking",
    r"what a joke|is a joke|are a joke",
    r"(?:total|complete|absolute|utter|such an?|what an?) (?:mess|joke|disaster|shambles|farce)",
    r"(?:are you|you'?re|you are) (?:kidding|joking)\b(?! about)|are you serious\b|en serio\?|"
    r"sérieux \?|sul serio\?",
    r"(?:you'?re|you are|are|is|such|what|same|total|absolute|complete) (?:an? )?clowns?\b|"
    r"bunch of (?:clowns|bots|idiots|muppets)",
    r"(?:keep|stay|cope) (?:coping|mad|harder)",
    r"(?:that'?s|it'?s) not fair|(?:this|that) is unfair",
    # complaint told as facts
    r"still (?:not|hasn'?t|haven'?t|isn'?t|doesn'?t|says|waiting|no)",
    r"(?:this|it) keeps happening|keeps (?:breaking|crashing|failing|happening)",
    r"(?:going|go) (?:round )?in circles",
    r"(?:locked|kicked|logged) out",
    r"can'?t (?:log in|login|sign in|get through|access)",
    r"on hold|sent (?:me )?home|no (?:email|call|notice|warning|apology|refund|one (?:called|told))",
    # what was promised, then nothing: "I rang on Monday, they said 48 hours, and nothing."
    r"\band nothing[.!]|\b(?:y|e) nada[.!]|\be niente[.!]|\bet rien[.!]|kein (?:anruf|rückruf)[.!,]|"
    r"niemand kam[.!,]|nadie (?:vino|llamó)[.!,]|personne n'est venu",
    r"(?:hours|days|weeks|minutes) (?:in line|on hold|late|of my life)|waited (?:for )?(?:over |nearly |almost )?\w{1,30} (?:hours|days|weeks)",
    r"cancelled (?:\w{1,30} )?(?:hours|days|minutes) before|without (?:any )?(?:notice|warning)",
    r"charged (?:me |us )?(?:twice|double)|double[- ]charged|overcharged|never (?:arrived|came)",
    r"nobody (?:rang|called|came|told|answered|replied|showed|knocked|mentioned|thought|"
    r"bothered|warned|checked|cares|listens|explained)",
    # a fault that has lasted
    r"(?:hasn'?t|haven'?t|isn'?t|wasn'?t) (?:been )?(?:worked|working|fixed|sorted|resolved)\b"
    r"(?: \S{1,20}){0,3} since",
    r"(?:been|is|was|are|were) (?:down|broken|dead|stuck|offline|missing) (?:since|for)"
    r" (?:\S{1,20} )?(?:days|weeks|months|hours|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|last|yesterday|this)",
    r"(?:didn'?t|never|hasn'?t) (?:arrive|turn up|show up)\b(?! yet)",
    r"(?:system|site|app|server|website|service|portal|network|wifi|internet|line)"
    r"(?:'s| is| was| has been| went)(?: \w{1,20})? down\b",
    r"(?:another|a whole|one more) day off work|wasted (?:a|my|the|two|three) ",
    r"(?:not|isn'?t|wasn'?t) (?:doable|acceptable|good enough|what i (?:ordered|paid for|asked for))",
    r"i'?ll have to (?:start looking|go elsewhere|cancel|complain)",
    # polite or tired frustration
    r"(?:honestly|frankly|to be honest),? (?:it'?s|this is|that'?s) (?:pretty |quite |a bit |really |so )?(?:frustrating|annoying|disappointing|exhausting|tiring)",
    r"(?:pretty|quite|a bit|really|so|very|rather|bit) (?:frustrating|annoying|disappointing|exhausting|tiring)",
    r"(?:i'?m|i am) (?:just )?(?:so |really |pretty )?(?:tired|exhausted|worn out|fed up|disappointed|upset|annoyed|frustrated)",
    r"(?:i'?m|i am) (?:panicking|dreading|terrified|scared|nervous|worried sick)",
    r"i (?:don'?t|do not) know what i'?m doing",
    r"i (?:don'?t|do not) (?:really |even )?know what (?:to do with myself|i'?m feeling)",
    r"can'?t stop (?:worrying|crying|shaking)",
    r"(?:is|are|was|were|lay|lies|smashed|broken) (?:in|into|to) pieces",
    r"never again|not impressed",
    # a challenge put as a question ("Did you even read a review?", "Where would that even
    # come from?"), a fault that recurs, a refusal or an ultimatum
    r"(?:did|do|does|have|has) (?:you|they|he|she|anyone|anybody) even (?:read|look|check|"
    r"listen|try|bother|think|watch|open|know|care|test)\b",
    r"where (?:would|will|does|did|is|are) (?:\S{1,20} ){1,5}?even come from",
    r"why (?:would|is|does|do|did|are|was|should) (?:\S{1,20} ){0,3}?even\b[^.!?\n]{0,40}\?|"
    r"how (?:is|was|are) (?:that|this|it) even\b",
    r"(?:" + INDIGNANT_QUESTIONS + r")(?=[?!.]|$)|"
    r"how did (?:that|this|it) not\b|how (?:has|have|did) (?:nobody|no one)\b|"
    r"is there nothing (?:sooner|earlier|else you can|you can)\b|"
    r"(?:so )?where(?:'s| is) (?:my|the) (?:money|refund|order|parcel|package|[£€$][\d.,]{1,12})|"
    r"how hard is it to\b|how many (?:more )?times (?:do i have to|have i (?:told|asked|said|"
    r"called|rung|written)|must i)\b",
    r"(?:(?:this|that|it)(?:'s| is) the )?(?:second|third|fourth|fifth|umpteenth|2nd|3rd|4th|5th) "
    r"time (?:since|in (?:a|two|three|four|five) (?:days?|weeks?|months?|years?)|"
    r"(?:that )?i'?ve (?:had to )?(?:contacted|contact|called|call|rung|ring|asked|ask|written|"
    r"write|emailed|email|chased|chase|reported|report|complained|complain))",
    r"(?:crashes|fails|breaks|drops|dies|freezes) (?:every (?:single )?time|whenever)",
    r"(?:missed|forgot|forgotten|crashed|failed|cancelled|late|broke(?! (?:\S{1,20} ){0,2}record))"
    r"(?: [^\s.!?]{1,20}){0,4} again\b",
    r"(?:i'?m|i am|we'?re|we are) not (?:paying|accepting)\b(?! attention)|"
    r"(?:i'?m|i am|we'?re|we are) not having (?:it|that|this)(?=[.!,]|$| (?:nonsense|rubbish|again|"
    r"any ?more|from)\b)",
    r"(?:i'?m|i am|we'?re|we are) (?:moving|taking) (?:my|our) (?:money|salary|business|account)",
    r"(?<=¿)en serio|en serio\?|vous vous moquez|tu te moques",
    r"(?:who|what|why|where) (?:the )?tf\b",
)
# A fault that recurs ("That's the second time"): a complaint only beside another one or a
# negative sentence, since it is also said of what people love ("the second time I've
# been to Rome").
WEAK_NEGATIVE_PHRASES = (
    r"(?:this|that|it)(?:'s| is) the (?:second|third|fourth|fifth|umpteenth) time\b"
    r"(?! (?:in a row|running|lucky)\b)",
    r"c'est (?:la|le) (?:deuxième|troisième) fois|è la (?:seconda|terza) volta|"
    r"es la (?:segunda|tercera) vez",
)
# Markers of sarcasm: a positive phrase about something plainly bad. When one is found,
# the positive sentences of the message are read as its irony and count for nothing.
SARCASM_PHRASES = (
    r"oh,? (?:great|brilliant|wonderful|perfect|lovely|fantastic|fab|super|joy)\b",
    r"exactly (?:how|what) i wanted|just what i (?:needed|wanted)",
    r"highlight of my|thank(?:s| you) for nothing\b(?! (?:short|but|less|more)\b)|"
    r"thanks (?:a lot |so much )?for making me",
    r"brilliant use of|great use of|(?:lasted|went) (?:well|great)\.|how convenient",
    r"yeah,? right|sure you (?:did|do|are)|what a surprise|surprise,? surprise",
    r"really looking forward to (?:paying|waiting|spending|another|more)",
    r"(?:pay|paying|paid)(?: \S{1,20}){0,3} for the privilege",
)
# The same, but also sincere often enough ("Love it. This is going to be so much fun."):
# sarcasm only in a message that also says something negative.
WEAK_SARCASM_PHRASES = (
    r"love it\.|just love (?:it|that|how|when)|loving (?:it|this)\.",
    r"can'?t wait\.|made my (?:day|week)\.|thanks a lot\.|so helpful\.|very helpful\.",
    r"convenient\.|(?:great|good|excellent) service|as always\.",
    r"(?:^|[.!?]\s)(?:great|perfect|wonderful|brilliant|lovely|fantastic)[.,]\s",
    r"lucky (?:me|us)[.!]|feel free to ignore",
)
# One word of praise as a sentence of its own after something else was said: "25 minutes.
# Amazing.", "Counted by the council that wants the lane. Convenient." It is irony when
# nothing else in the message is positive (see sentiment._score_messages), and never
# after an acknowledgement ("Got it. Great.", "Booked. Brilliant.").
LONE_PRAISE_PHRASES = (
    r"(?<!\bok)(?<!okay)(?<!done)(?<!got it)(?<!thanks)(?<!booked)(?<!sorted)(?<!\byes)"
    r"(?<!\byep)(?<!noted)(?<!cool)[.!?] (?:oh,? |just )?(?:brilliant|great|amazing|super|"
    r"fantastic|wonderful|convenient|genial|génial|fabulous|marvellous|terrific|fantástico|"
    r"fantastico|toll)(?:[.!]+(?= |$)|$)",
)
# Hostile words already carry their lexicon value; found as a phrase they only name the
# signal behind a message's tone.
HOSTILE_PHRASE = r"(?:" + "|".join(sorted(HOSTILE_WORDS)) + r")\b"
# Warm or enthusiastic phrasings that VADER misreads as neutral or negative.
POSITIVE_PHRASES = (
    r"(?:i'?ve|i have) missed (?:you|that|this|him|her|them)",
    r"of course (?:bring|come|you can(?!'?t| ?not)|i will|i'?ll)",
    r"who'?s in\?|count me in|i'?m in[.!]",
    r"no way[!?]|that'?s wild|so (?:proud|happy|excited)|can'?t wait(?:!| to see| for)",
    r"less like a (?:disaster|problem|failure)|not (?:so|that) bad after all|feel (?:much )?better",
    r"any ?time[.!]|my pleasure|you'?re a star|you'?re a lifesaver",
    # a proposal accepted or an answer confirmed in one word: "Deal.", "Exactly!"
    r"(?:^|[.!?] )(?:deal|exactly)[.!]",
)
# Praise said through a negation ("Nothing beats a sunny day", "can't complain", "couldn't
# be happier"): the negation that turns the praised word negative for the lexicon is the
# praise, so the message's negative sentences count for nothing.
NEGATED_PRAISE_PHRASES = (
    r"nothing (?:beats|tops)\b|you (?:can'?t|cannot) beat\b(?! (?:him|her|them|me|us)\b)|"
    r"(?:can'?t|cannot) beat (?:a good|a nice|a proper|home|that for)\b",
    r"(?:couldn'?t|could not) be happier|"
    r"(?:(?:can'?t|cannot) complain|no complaints)\b"
    r"(?![^.!?\n]{0,60}\b(?:but|although|though|except)\b|[^.!\n]{0,40}\?)",
)

# Apologies for one's own conduct and concessions of one's own mistake: conciliatory, not
# distress ("Sorry for coming in hot", "I owe you an apology", "I was wrong about the
# dates", "I'm sorry too"). A bare "Sorry, quick question" is a discourse marker and not
# among them.
APOLOGY_PHRASES = (
    r"sorry (?:for|about) (?:my|me|that|the|coming|being|not|missing|snapping|earlier)\b",
    r"(?:i'?m|i am) (?:so |really |very |truly )?sorry(?: too)?[.!]",
    r"(?:i'?m|i am) sorry,? i (?:shouldn'?t|should|was|didn'?t)\b",
    r"i (?:apologi[sz]e|owe you (?:an|a proper|an honest) apology)|my apologies",
    r"i was wrong\b|i stand corrected|my (?:bad|mistake)\b",
)

# --- reactions ------------------------------------------------------------------------

# Pushback that opens a reply without the words "I disagree": a counter-claim ("But…",
# "That assumes…", "Not if…"), a challenge ("Which studies?", "Says who?"), a refusal in
# a negotiation ("$720 is as low as I'll go"), or dismissal ("That's nonsense").
PUSHBACK_OPENINGS = (
    r"but\b",
    r"(?:hmm|hm|well|sure|true|fair|ok|okay|yes|yeah|right)[,.!]*\s+(?:\S{1,30}\s+){0,6}?but\b",
    r"(?:hmm|hm),? (?:i'?d|i would|i'?m not|not sure|i don'?t)",
    r"i'?m not (?:so |that |entirely )?(?:sure|convinced)",
    r"i'?m not sure about",
    r"not (?:so fast|if|when|necessarily|really|quite|exactly)\b",
    r"no way\b(?!\s*!)",
    r"nope\b|nah\b",
    r"that (?:assumes|ignores|misses|depends)",
    r"that'?s (?:the point|the whole point|exactly the problem|the problem)\b",
    r"that'?s (?:nonsense|rubbish|ridiculous|absurd|not (?:how|what|true|fair|the point))",
    r"nonsense|rubbish|ridiculous",
    r"isn'?t that (?:just|exactly|what)",
    r"which (?:studies|study|data|numbers|evidence|sources?)\b",
    r"says who|according to whom|since when",
    r"so your (?:answer|argument|point|solution) is",
    r"you'?re (?:all )?(?:missing|twisting|ignoring|assuming|wrong)",
    r"(?:i'?m|i am) not attacking",
    r"(?:i'?m|i am) saying",
    r"i (?:see|read) (?:it|that|this) (?:a bit |quite |very )?differently",
    r"i (?:read|took|saw) (?:it|that|this|that shot|the ending) as",
    r"i (?:wouldn'?t|would not|don'?t|do not) (?:bother|do that|say that|go that far|think)",
    r"i'?d (?:be careful|lean|rather|take|go with|close|open|argue|push)",
    r"(?:it|that) was never",
    r"nobody\b",
    r"only if|even so|except\b|unless\b",
    r"(?:it'?s|that'?s) (?:not just|not about|not that|more about|less about)",
    r"those are (?:probably|just|only)",
    r"then i'?m afraid|i can'?t go (?:below|above|lower|higher)|as low as i'?ll go|"
    r"best i can (?:do|stretch|offer)|meet me at|would you (?:take|consider|do)",
    r"that'?s (?:quite )?(?:a bit|a lot|way|far) (?:under|over|below|above|more|less)",
    r"(?:sorry|i'?m sorry),? (?:i'?ll hold out|i can'?t|that'?s too)",
    r"(?:really|seriously)\?",
    r"(?:oh,? )?here we go\b",
    r"(?:can'?t|cannot) (?:do|make) (?:that|it|thursday|monday|tuesday|wednesday|friday)",
    r"can'?t (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)",
    # contradiction and refusal without the words "I disagree"
    r"not (?:true|always|for everyone|"
    r"an? (?!problem|bother|worry|big deal|issue|trouble|chance|clue|fan)[^\W\d_]{1,20}[.!])",
    r"\d[\d.,]{0,8}k? (?:no[.!,]|is too (?:low|high|much)|won'?t work|doesn'?t work)",
    r"i'?m not (?:accepting|agreeing|voting for|paying|signing|doing that)",
    r"i'?d still rather|i'?d rather (?:not|keep|stick)",
    r"that'?s still (?:about |around |roughly )?(?:\S{1,20} ){0,3}?(?:under|below|short of|over|"
    r"above) (?:what|the (?:market|asking|going)|market|asking|budget)",
    r"(?:we|i) could,? (?:except|but)\b",
)
# A pushback somewhere in the first sentence: "That's a logistics problem, not a support
# problem", "My dad always swore by it though", "Better tests would have prevented that".
PUSHBACK_ANYWHERE = (
    r", not (?:a |an |the )?[^\W\d_]",
    r"\bthough[.!]?$|\bthough[.,!]\s",
    r"\b(?:would have|could have) (?:prevented|fixed|solved|avoided) that\b",
    r"\b(?:it|that|this) (?:takes|is|was|happens) \w{1,30}(?: \w{1,30})? because\b",
    r"\bthat'?s (?:illegal|dangerous|unfair|not fair|a stretch|a myth|just not)\b",
    r"\bthat'?s (?:teachable|fixable|solvable)\b",
    r"\byou (?:never|always) (?:let|do|say)\b",
    r"\bcheap shot\b",
    r"\b(?:isn'?t|is not|wasn'?t|aren'?t) the problem\b",
    r"\bi (?:don'?t|do not) (?:buy|accept) (?:that|it|this)\b",
    r"\b(?:weak|flawed|one-sided|misleading|cherry-picked)\b",
    # the same in the other languages people mix into chats
    r"\b(?:aber|pero|mais|doch)\b",
    r"\bstimmt (?:so )?nicht\b|\bno es (?:así|verdad|cierto)\b|\bc'est faux\b",
)
# Every pattern above contains one of these: a substring scan rules out most messages far
# faster than the patterns themselves.
PUSHBACK_ANYWHERE_HINTS = (
    *(", not", " though", "would have", "could have", "because", "you never", "you always"),
    *("illegal", "dangerous", "unfair", "not fair", "stretch", "myth", "just not"),
    *("teachable", "fixable", "solvable", "cheap shot", "the problem", "buy", "accept"),
    *("weak", "flawed", "one-sided", "misleading", "cherry", "aber", "pero", "mais", "doch"),
    *("stimmt", "no es", "c'est"),
)
# Courtesy opening a reply: a greeting, thanks, an apology, an offer of help, praise of the
# question, "no problem", "of course". Before a question back it answers nothing ("Good
# morning and welcome to support. What is your account number?"); opening a reply it is
# service, not a rebuttal ("I'm sorry to hear that. I can see the order shipped…").
COURTESY_OPENING = (
    r"(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|welcome|thanks|thank you|"
    r"cheers|sorry|i'?m sorry|apologies|no problem|no worries|not a problem|of course|"
    r"sure thing|happy to|glad to|certainly|absolutely|this is|"
    r"(?:that'?s a )?(?:really |very )?(?:good|great|fair) question)\b"
)
# A reply that reports the next error while being helped ("Hmm, now I get TypeError…")
# continues the troubleshooting; it does not oppose the assistant.
ERROR_REPORT = (
    r"\b(?:now|still|then) (?:i|it) (?:get|gets|got|getting|say|says|throw|throws|show|shows)\b",
    r"\b(?:i'?m|i am|it'?s|it is) (?:still )?(?:getting|showing|throwing)\b",
    r"\b(?:error|exception|traceback|typeerror|valueerror|undefined|stack trace|crash(?:es)?)\b",
    r"\bwon'?t (?:even )?(?:start|run|compile|load|build)\b",
)
# Concession that turns a reply into agreement even when it opens with "No": "No.
# You're right, it isn't." and the acceptance of a proposal or a point.
AGREEMENT_OPENINGS = (
    r"(?:no|okay|ok|yes|yeah|hmm)[,.!]?\s+you'?re (?:absolutely |totally |quite )?right",
    r"fair(?: enough| point)?[,.!]",
    r"(?:ok|okay)[,.!]? (?:that'?s|you'?ve|you have) (?:a )?(?:fair|good|valid) point",
    r"agree with\b",
    r"(?:yes|yep|yeah|sure|ok|okay)[,.!]? (?:please|let'?s|do it|go for it|that works)",
    r"(?:\w{1,30} )?works(?: for me)?[.!]?$",
    r"(?:i'?d|i would) support that|i'?m happy with that|happy with that|i'?ll take it",
    r"(?:\w{1,20} )?(?:i|we) (?:can|could) live with\b",
    r"put like that|when you put it like that|i hadn'?t (?:seen|thought of) that",
    r"and i'?ll admit|i'?ll (?:give you|grant you|admit)",
    r"(?:ok|okay|alright|fine)[,.!]? (?:deal|done|agreed|you win|i'?m in)",
    r"passt|vale|d'accord|genau|claro|perfecto|de acuerdo",
    r"that'?s (?:a )?(?:fair|good) (?:point|call|idea)",
    r"i was wrong|my mistake|my bad|you were right",
    r"(?:(?:yes|yeah|ok|okay)[,.!]? )?(?:that'?s|it'?s) a (?:good|fair|sensible) "
    r"(?:compromise|plan|call)",
    r"fine by me|works for me|(?:that|this) works\b|good shout|good call",
    r"i'?m with (?:you|him|her|them|\w{1,20} on this|\w{1,20},|\w{1,20}$)",
    r"(?:he'?s|she'?s|you'?re|they'?re) not wrong",
    r"(?:ok|okay|fine)[,.!]? (?:outvoted|you win|fair enough)",
    r"go on then|find ich gut|(?:okay,? )?einverstanden|me parece bien|je suis d'accord",
)

# A message is searched for the tone phrases only when it holds one of these words (VADER's
# lower-cased token, punctuation stripped): a pattern over every message would cost more
# than the whole lexicon pass. Every phrase above contains at least one of them.
PHRASE_ANCHORS = frozenset(
    """
    twisting missing listening ridiculous wrong weak flawed nonsense lazy cheap sweeping
    absurd again break spare dare attacking joke fair unfair keeps circles locked kicked
    logged login log sign access hold home email call notice warning apology refund called
    told line charged twice double overcharged arrived came service always making late
    life waited cancelled without off wasted doable acceptable enough ordered paid asked
    looking elsewhere cancel complain frustrating annoying disappointing exhausting tiring
    tired exhausted worn fed disappointed upset annoyed frustrated panicking dreading
    terrified scared nervous worried doing impressed oh great perfect wonderful brilliant
    lovely fantastic love loving wait needed wanted highlight nothing made thanks use
    helpful lasted went convenient yeah sure surprise forward missed course who's count
    i'm way wild proud happy excited less bad better anytime any pleasure star lifesaver
    down sorry apologise apologize apologies apology bad mistake corrected deal exactly
    mess disaster shambles farce kidding joking serious serio sérieux coping mad harder
    broken dead stuck offline missing lucky privilege ignore pieces clown clowns beat
    beats happier complaints even second third fourth fifth umpteenth paying accepting
    having moving moquez moques deuxième troisième seconda terza segunda tercera tf
    amazing super genial génial fabulous marvellous terrific fantástico fantastico toll
    nada niente rien anruf rückruf niemand nadie personne crashes fails breaks drops dies
    freezes 2nd 3rd 4th 5th shut screw piss
    """.split()  # noqa: SIM905
) | frozenset(HOSTILE_WORDS)

# Words too common to send every message holding them to the phrase search ("still",
# "nobody"): they count as anchors only followed by one of these words.
PHRASE_ANCHOR_PAIRS: dict[str, frozenset[str]] = {
    "still": frozenset(
        "not hasn't haven't isn't doesn't didn't says say waiting no nothing broken".split()  # noqa: SIM905
    ),
    "nobody": frozenset(
        [
            "rang",
            "called",
            "came",
            "told",
            "answered",
            "replied",
            "showed",
            "knocked",
            "mentioned",
            "thought",
            "bothered",
            "warned",
            "checked",
            "cares",
            "listens",
            "explained",
        ]
    ),
    "can't": frozenset("get log login sign access wait stop".split()),  # noqa: SIM905
    "cant": frozenset("get log login sign access wait stop".split()),  # noqa: SIM905
    "know": frozenset("what".split()),  # noqa: SIM905
    # a fault that has lasted, a parcel that never came, "a bunch of clowns"
    **dict.fromkeys(
        ("hasn't", "haven't", "isn't", "wasn't"),
        frozenset("been worked working fixed sorted resolved".split()),  # noqa: SIM905
    ),
    **dict.fromkeys(
        ("didn't", "never"),
        frozenset("arrive turn show".split()),  # noqa: SIM905
    ),
    "bunch": frozenset("of".split()),  # noqa: SIM905
    # "who does that?", "how did that not alert anyone?", "where is my refund?"
    "who": frozenset("does even".split()),  # noqa: SIM905
    "how": frozenset("did has have hard many".split()),  # noqa: SIM905
    "where": frozenset(["is"]),
    "where's": frozenset(["my"]),
}


# After an assenting word, a denial turns it round: "Absolutely not", "Absolutely, no.",
# "Absolutely no way", "Absolutely never.", "Totally disagree", "Totally wrong". Agreeing
# with something negative does not: "Absolutely, never again", "Exactly, no one does",
# "Sure, no problem", "Great, no more late nights".
NOT_DENIED = (
    r"(?!\W{0,6}(?:not|nope|disagree|wrong|ridiculous|absurd|as if"
    r"|(?:no|never)(?=\W*$|[.!,;]| way\b| chance\b| thanks\b))\b)"
)
