"""Prompt-injection and jailbreak scoring of inbound messages and tool results.

Each text is reduced to a few dozen binary features (docs/guards.md lists them with their
meaning and weight), and the features are combined into a score in [0, 1] by a logistic
function: score = 1 / (1 + exp(-(BIAS + sum of the weights of the features that fired))).
The weights were fitted on tests/policies/data/injection_dev.jsonl (bench/injection_eval.py
--fit: logistic regression pulled toward hand-set prior weights), with signs fixed in
advance: attack features may only raise the score, benign context features may only lower
it. A text on which no attack feature fires scores 0.

Cheap by construction: a text is lower-cased once, each feature family is tried only when
one of its key words occurs (a substring test), and the regular expressions that then run
are anchored on those words with bounded gaps. Non-ASCII texts also have invisible
characters removed and look-alike letters folded before matching, so "іgnоrе" (Cyrillic)
and "ig\u200bnore" read as "ignore".

`scan_messages` walks OpenAI chat messages (and Anthropic-shaped content blocks), scores
every text part and returns the highest. Tool results (role "tool", "function", or
`tool_result` blocks) carry extra features: text from a tool that addresses the model or
gives it instructions is the indirect-injection case and weighs more. System and developer
messages are written by the application, so their score is lowered by SYSTEM_OFFSET;
assistant turns are not scored.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "BIAS",
    "DEFAULT_THRESHOLD",
    "FEATURES",
    "WEIGHTS",
    "InjectionVerdict",
    "features_of",
    "scan_messages",
    "score_features",
    "score_text",
]


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """How much a text (or the worst part of a conversation) looks like an injection."""

    score: float  # 0..1
    features: tuple[str, ...]  # names of the features that fired, most important first
    source: str  # "user", "system", "tool" or "" (where the top score came from)
    index: int  # message index of the highest-scoring part, -1 if none


# ----------------------------------------------------------------------------- weights

# Fitted on the development set (bench/injection_eval.py --fit), rounded to one decimal.
BIAS = -2.6
WEIGHTS: dict[str, float] = {
    # attack features (weight >= 0)
    "override_instructions": 3.5,
    "override_context": 2.4,
    "new_instructions": 2.2,
    "you_are_now": 1.1,
    "jailbreak_term": 2.4,
    "no_restrictions": 2.8,
    "roleplay_escape": 1.6,
    "leak_request": 3.4,
    "leak_target": 1.0,
    "chat_template_token": 2.0,
    "role_line": 1.6,
    "exfil_markdown_image": 3.1,
    "exfil_send": 3.2,
    "secrecy": 1.5,
    "urgent_marker": 1.0,
    "addresses_ai": 1.4,
    "decode_and_follow": 2.0,
    "encoded_instruction": 4.0,
    "long_encoded_blob": 0.4,
    "invisible_chars": 3.0,
    "bidi_control": 3.0,
    "mixed_script": 3.0,
    "tool_addresses_ai": 2.3,
    "tool_instruction": 2.0,
    # benign context features (weight <= 0)
    "meta_discussion": -2.0,
    "quoted_phrase": -1.7,
    "code_context": -1.6,
    "own_correction": -2.0,
    "data_uri": -1.0,
}
FEATURES: tuple[str, ...] = tuple(WEIGHTS)
# The 1% false-positive point on the development set: 0.0% of its benign texts score at or
# above it (at most 1% may), 96.5% of its attacks do. docs/guards.md has the held-out figures.
DEFAULT_THRESHOLD = 0.5
# System and developer messages come from the application, not from whoever is attacking it.
SYSTEM_OFFSET = -2.0

# ----------------------------------------------------------------------------- normalising

_INVISIBLE = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_STRIP = {ord(c): None for c in _INVISIBLE + _BIDI}
# A zero-width character between two letters hides a word from a filter; between emoji
# (a family's ZWJ sequence) it is ordinary text.
_INVISIBLE_IN_WORD = re.compile(rf"(?<=[^\W\d_])[{_INVISIBLE}]+(?=[^\W\d_])")
# Cyrillic, Greek and Armenian letters that look like Latin ones.
_CONFUSABLES = str.maketrans(
    "аеорсхуіјѕԁһӏԛԝαεοριτυνкмнвтΑΒΕΖΗΙΚΜΝΟΡΤΥΧАВЕКМНОРСТХՕոսօ",
    "aeopcxyijsdhlqwaeopituvkmhbtABEZHIKMNOPTYXABEKMHOPCTXOnuo",
)
_SCRIPTS = r"\u0370-\u03ff\u0400-\u052f\u0530-\u058f"
_MIXED_SCRIPT = re.compile(rf"[a-zA-Z][{_SCRIPTS}]|[{_SCRIPTS}][a-zA-Z]")
# Word splitting works on UTF-8 bytes (a byte table translates far faster than a str one):
# ASCII punctuation and spaces separate words; typographic marks are turned into spaces
# first, and only in texts that are not plain ASCII.
_BYTE_SEPARATORS = bytes(c if (c >= 128 or chr(c).isalnum()) else 32 for c in range(256))
# A run of 40 base64 (or hex) characters shows up as 40 "a"s after this table.
_B64_ALPHABET = bytes(
    97 if chr(c) in "+/=" or (c < 128 and chr(c).isalnum()) else 32 for c in range(256)
)
_B64_RUN = b"a" * 40
_TYPOGRAPHIC = str.maketrans(dict.fromkeys("’‘“”«»„–—…¿¡·\u00a0", " "))


def _normalise(text: str) -> tuple[str, set[str]]:
    """The lower-cased text to match on, and the obfuscation features seen on the way."""
    fired: set[str] = set()
    if text.isascii():
        return text.lower(), fired
    try:
        text.encode("latin-1")  # all code points below 256: only the soft hyphen can hide
        wide = False
    except UnicodeEncodeError:
        wide = True
    if wide or "\u00ad" in text:
        if any(c in text for c in _BIDI):
            fired.add("bidi_control")
        if any(c in text for c in _INVISIBLE):
            if len(_INVISIBLE_IN_WORD.findall(text)) >= 2:
                fired.add("invisible_chars")
            text = text.translate(_STRIP)
        elif "bidi_control" in fired:
            text = text.translate(_STRIP)
        if wide and len(_MIXED_SCRIPT.findall(text)) >= 3:
            fired.add("mixed_script")
            text = text.translate(_CONFUSABLES)
    return text.lower(), fired


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class _Rule:
    """A phrase pattern tried only near its anchor words, when its gate words are present.

    anchors: whole words; each occurrence opens a window [at - before, at + after] that the
    pattern is searched in (positions into the whole text, so \b and ^ see real context).
    gate: every set in it must share a word with the text. After `cap` windows without a
    match the pattern is searched over the whole text once instead, so padding a text with
    decoy anchors does not hide a later phrase.
    """

    pattern: re.Pattern[str]
    anchors: frozenset[str]
    gate: tuple[frozenset[str], ...] = ()
    before: int = 40
    after: int = 120
    cap: int = 24

    def search(self, low: str, words: set[str]) -> re.Match[str] | None:
        for required in self.gate:
            if required.isdisjoint(words):
                return None
        tried = 0
        for anchor in self.anchors & words:
            at = low.find(anchor)
            while at >= 0:
                tried += 1
                if tried > self.cap:
                    return self.pattern.search(low)
                m = self.pattern.search(
                    low, max(0, at - self.before), at + len(anchor) + self.after
                )
                if m:
                    return m
                at = low.find(anchor, at + len(anchor))
        return None


def _w(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A bounded gap of up to n words between two parts of a phrase.
def _gap(n: int) -> str:
    return rf"(?:[^\w\n]+[\w'’-]+){{0,{n}}}?[^\w\n]+"


_OVERRIDE_WORDS = _w(
    "ignore ignoring disregard disregarding forget override overriding bypass aside attention "
    "follow following obey drop ignoriere ignorier ignorieren vergiss vergessen missachte "
    "missachten ignorez ignorer oublie oubliez oublier compte ignora ignorar olvida olvidar "
    "olvide omiso"
)
_RULE_WORDS = _w(
    "instruction instructions rules directive directives guidelines guidance prompt prompts "
    "programming constraints orders commands policies restrictions setup anweisung anweisungen "
    "regeln vorgaben instruktionen befehle consignes règles instrucciones indicaciones reglas "
    "normas directrices safety safeguards ethics"
)
_OVERRIDE_VERB = (
    r"(?:ignore|ignoring|disregard(?:ing)?|forget|override|overriding|bypass|set aside"
    r"|pay no attention to|(?:do not|don't|don t|stop|no longer) (?:follow|obey)(?:ing)?|drop"
    r"|ignorier\w*|vergiss|vergessen sie|missacht\w*"
    r"|ignore[rz]?|oublie[rz]?|ne (?:tiens?|tenez) plus compte d\w*"
    r"|ignora[rd]?|olvida[rd]?|olvide|haz caso omiso d\w*)"
)
_RULES = (
    r"(?:instructions?|rules|directives?|guidelines|guidance|prompts?(?! to\b)|programming|constraints"
    r"|orders|commands|policies|restrictions|system prompt|setup|safety|safeguards|ethics"
    r"|anweisung\w*|regeln|vorgaben|instruktion\w*|befehle"
    r"|consignes|règles|directives"
    r"|instrucciones|indicaciones|reglas|normas|directrices)\b"
)
_OWN = re.compile(r"\b(?:my|mine|our|meine\w*|mes|mis)\b")
_OVERRIDE = _Rule(
    re.compile(rf"\b{_OVERRIDE_VERB}\b{_gap(4)}{_RULES}"),
    _OVERRIDE_WORDS,
    gate=(_RULE_WORDS,),
    before=25,
)
_OVERRIDE_CONTEXT = (
    _Rule(
        re.compile(
            r"\b(?:ignore|disregard|forget)\s+(?:everything|anything|what)\b.{0,40}?"
            r"\b(?:above|before|prior|earlier|previous|told|said)\b"
        ),
        _w("everything anything what"),
        gate=(_w("ignore disregard forget"),),
        before=12,
        after=50,
    ),
    _Rule(
        re.compile(
            r"\b(?:previous|prior|earlier|above|original|old)\s+(?:instructions|rules|constraints"
            r"|guidance|directives|orders)\s+(?:are|were|is|no longer)\b"
            r"|\b(?:instructions|rules|constraints|orders)\s+(?:are|were|have been)\s+(?:now\s+)?"
            r"(?:void|cancel+ed|outdated|obsolete|changed|disabled|lifted)"
        ),
        _w("instructions rules constraints guidance directives orders"),
        gate=(_w("previous prior earlier above original old are were been"),),
        before=12,
        after=40,
    ),
    _Rule(re.compile(r"\bno longer appl(?:y|ies)\b"), _w("longer"), before=3, after=10),
    # "Translate this. Actually, disregard that and ..." drops the task the text set.
    _Rule(
        re.compile(r"\b(?:ignore|disregard|forget|scrap) (?:that|this|it)\b,? (?:and|instead)\b"),
        _w("ignore disregard forget scrap"),
        before=2,
        after=24,
    ),
    _Rule(
        re.compile(
            r"\byour (?:new|real|only|true) (?:task|objective|goal|instructions?|directive"
            r"|purpose|mission)\b"
        ),
        _w("task objective goal instructions instruction directive purpose mission"),
        gate=(_w("your"), _w("new real only true")),
        before=16,
        after=2,
    ),
)
_NEW_INSTRUCTIONS = _Rule(
    re.compile(
        r"\bnew (?:instructions?|directives?|rules|task|orders)\s*[:\-]"
        r"|\b(?:neue anweisungen|nouvelles? (?:instructions?|consignes)|nuevas instrucciones)\b"
        r"|\b(?:priority|system) (?:override|instruction|notice|update|directive)\b"
        r"|\boverride\s*:"
    ),
    _w(
        "instructions instruction directive directives rules task orders anweisungen consignes "
        "instrucciones override notice update"
    ),
    gate=(_w("new neue nouvelles nouvelle nuevas priority system override"),),
    before=12,
    after=4,
)
_YOU_ARE_NOW = _Rule(
    re.compile(
        r"\b(?:you are|you're|you re|you will be|now you are) now\b|\bfrom now on,? you\b"
        r"|\byou will now\b|\b(?:du bist|sie sind) (?:jetzt|nun|ab sofort)\b|\bab sofort bist du\b"
        r"|\btu es (?:maintenant|désormais)\b|\bvous êtes (?:maintenant|désormais)\b"
        r"|\b(?:ahora|a partir de ahora) eres\b"
    ),
    _w("now jetzt nun sofort maintenant désormais eres"),
    gate=(_w("are re will be from bist sind es êtes eres"),),
    before=22,
    after=12,
)
_JAILBREAK = _Rule(
    re.compile(
        r"\bjailbr(?:eak|oken)\b|\bdeveloper mode\b|\bdo anything now\b|\bdan\b(?! brown)"
        r"|\bmode développeur\b|\bentwicklermodus\b|\bmodo desarrollador\b"
        r"|\b(?:admin|maintenance|god|unrestricted|unfiltered) mode\b"
    ),
    _w(
        "jailbreak jailbroken developer anything dan entwicklermodus développeur desarrollador mode"
    ),
    before=16,
    after=16,
)
_NO_RESTRICTIONS = _Rule(
    re.compile(
        r"\b(?:no|without|free of|free from|freed from|broken free of|escaped)\s+(?:any\s+|all\s+)?"
        r"(?:[\w-]+'s\s+|its\s+|your\s+|their\s+)?"
        r"(?:restrictions|filters?|rules|limits|limitations|ethics|guidelines|content polic(?:y|ies)"
        r"|safety|censorship|boundaries|programming|disclaimers?|warnings|polic(?:y|ies))\b"
        r"|\bunfiltered\b|\bunrestricted\b|\bamoral\b|\bnever (?:says? no|refuses?)\b"
        r"|\b(?:evil|rogue|unaligned|uncensored) (?:ai|assistant|bot|model|chatbot)\b"
        r"|\b(?:safety|content) (?:guidelines|filters|policy|policies) (?:have been |are |were |is )?"
        r"(?:switched off|turned off|disabled|removed)\b"
        r"|\bohne (?:einschränkungen|regeln|filter)\b|\bsans (?:aucune )?(?:restriction|règle|filtre)s?\b"
        r"|\bsin (?:filtros|restricciones|reglas|límites)\b"
    ),
    _w(
        "restrictions filter filters rules limits limitations ethics guidelines policy policies "
        "safety censorship boundaries unfiltered unrestricted amoral never einschränkungen regeln "
        "restriction restrictions règle règles filtre filtres filtros restricciones reglas límites "
        "programming disclaimer disclaimers warnings evil rogue unaligned uncensored"
    ),
    gate=(
        _w(
            "no without free freed unfiltered unrestricted amoral never off disabled removed ohne "
            "sans sin escaped evil rogue unaligned uncensored"
        ),
    ),
    before=30,
    after=60,
)
_ROLEPLAY = _Rule(
    re.compile(
        r"\b(?:pretend|act as|acting as|role-?play|imagine you|you are going to|stay in character"
        r"|in character|immerse yourself)\b"
    ),
    _w("pretend act acting role roleplay imagine going character immerse"),
    before=12,
    after=20,
)
_LEAK_VERB = (
    r"(?:reveal|show|print|output|repeat|display|dump|share|quote|list|tell me|give me|write out"
    r"|summari[sz]e|translate|what"
    r"|zeig\w*|verrate?\w*|gib\w*|affiche[rz]?|révèle[rz]?|montre[rz]?|muestra|muéstrame|revela|dime)"
)
_LEAK_TARGET = (
    r"(?:system (?:prompt|message)|initial (?:prompt|instructions)|(?:hidden|secret|confidential"
    r"|original|developer(?:'s)?|operator(?:'s)?) (?:instructions|rules|prompt)|your (?:instructions"
    r"|prompt|rules|configuration)|initiali[sz]ation|(?:everything|the words|the text|all text) "
    r"(?:above|before)|context window|the instructions you (?:were given|received)"
    r"|systemprompt|system-prompt|versteckten anweisungen|prompt système|instructions cachées"
    r"|prompt del sistema|instrucciones ocultas"
    r"|(?:were you|you were|have you been) told (?:not to|to keep|to hide|never to))"
)
_LEAK_TARGET_RULE = _Rule(
    re.compile(_LEAK_TARGET),
    _w(
        "prompt message instructions rules configuration initialization initialisation above "
        "before window given received systemprompt anweisungen système cachées sistema ocultas told"
    ),
    gate=(
        _w(
            "system initial hidden secret confidential original developer operator your everything "
            "words text context initialization initialisation instructions systemprompt versteckten "
            "cachées sistema ocultas système told"
        ),
    ),
    before=40,
    after=24,
)
_LEAK_REQUEST = re.compile(rf"\b{_LEAK_VERB}\b{_gap(6)}{_LEAK_TARGET}")
_CHAT_TEMPLATE = re.compile(
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>"
    r"|\[/?inst\]|<</?sys>>|</s>|<s>\s*\[|<system>|</system>"
)
_ROLE_WORDS = _w("system assistant human user")
_MARKUP_ROLE = re.compile(
    r"(?m)^[ \t>*_-]*(?:#{1,6}[ \t]*(?:system|instruction|response)\b|-{2,}[ \t]*system|\[system\])"
    r"|\"role\"\s*:\s*\"system\"|\bend of (?:user )?input\b|\[system\]\(#"
)


def _role_line(low: str, words: set[str]) -> bool:
    """A line that starts with a role name and a colon ("System:", "Assistant:"), a markdown
    header naming one ("### System"), a JSON system role, or an "end of input" marker."""
    for word in _ROLE_WORDS & words:
        for tail in (":", " :"):
            needle = word + tail
            at, tried = low.find(needle), 0
            while at >= 0 and tried < 64:
                tried += 1
                line_start = low.rfind("\n", 0, at) + 1
                if not low[line_start:at].strip(" \t>*_-"):
                    return True
                at = low.find(needle, at + len(needle))
    marks = ("#" in low, "--" in low, "[system]" in low, '"role"' in low, "end of" in low)
    return any(marks) and _MARKUP_ROLE.search(low) is not None


_URL = r"https?://[^\s)\"'>]+"
_EXFIL_IMAGE = re.compile(rf"!\[[^\]\n]{{0,80}}\]\(\s*{_URL}\?")
_SEND_VERB = (
    r"(?:send|post|upload|forward|exfiltrate|transmit|leak|append|embed\w*"
    r"|envoie|envoyer|envoyez|transmets|schick\w*|sende|senden|übermittle\w*|envía|enviar|manda\w*)"
)
_SEND_WORDS = _w(
    "send post upload forward exfiltrate transmit leak append embed embedding envoie envoyer "
    "envoyez transmets schicke schicken sende senden übermittle envía enviar manda"
)
_EXFIL_SEND = (
    _Rule(
        re.compile(rf"\b{_SEND_VERB}\b[^\n]{{0,120}}?{_URL}"),
        _w("http https"),
        gate=(_SEND_WORDS,),
        before=130,
        after=4,
    ),
    _Rule(
        re.compile(
            r"\b(?:send|post|upload|forward|exfiltrate|transmit)\b[^\n.]{0,40}?\b(?:conversation"
            r"|chat history|previous messages|personal data|passwords?|api keys?|credentials"
            r"|user's (?:data|files|email))"
        ),
        _w(
            "conversation history messages data password passwords key keys credentials files email"
        ),
        gate=(_SEND_WORDS,),
        before=60,
        after=4,
    ),
)
_SECRECY = _Rule(
    re.compile(
        r"\b(?:do not|don't|don t|never|without) (?:tell|telling|mention|mentioning|reveal|revealing"
        r"|inform|informing|alert|alerting)\w*\b[^\n.]{0,20}?\b(?:user|anyone|this|them)\b"
        r"|\bhide this\b|\bsilently\b|\bas if nothing happened\b"
    ),
    _w(
        "tell telling mention mentioning reveal revealing inform informing alert hide silently happened"
    ),
    before=12,
    after=30,
)
_URGENT = _Rule(
    re.compile(r"\b(?:important|attention|urgent|notice|warning)\b\s*[:!]"),
    _w("important attention urgent notice warning"),
    before=0,
    after=4,
)
_AI_WORDS = _w("ai assistant chatgpt gpt claude model llm bot assistants models llms")
_AI_NAME = (
    r"(?:the )?(?:ai|assistant|chatgpt|gpt|claude|language model|llm|model|bot|ai model"
    r"|ai assistant|ai system)s?\b"
)
# Phrases that speak to the model, each tried only where its first word occurs.
_TO_AI = {
    "dear": re.compile(rf"dear {_AI_NAME}"),
    "hey": re.compile(rf"hey,? {_AI_NAME}"),
    "hi": re.compile(rf"hi,? {_AI_NAME}"),
    "hello": re.compile(rf"hello,? {_AI_NAME}"),
    "attention": re.compile(rf"attention,? {_AI_NAME}"),
    "note": re.compile(rf"note (?:to|for) {_AI_NAME}"),
    "instruction": re.compile(rf"instructions? (?:to|for) {_AI_NAME}"),
    "message": re.compile(rf"message (?:to|for) {_AI_NAME}"),
    "if": re.compile(r"if you are an? (?:ai|llm|language model|assistant|bot|ai model|chatbot)\b"),
    "you": re.compile(r"you,? the (?:assistant|ai|model|language model)\b"),
}
_AT_WORK = _w("reading processing summarising summarizing parsing reads")
_AI_AT_WORK = re.compile(
    r"\b(?:ai|llm|assistant|model|chatgpt|bot)s?(?: systems?| models?| assistants?)? (?:reading"
    r"|processing|summari[sz]ing|parsing|that reads?|which reads?) (?:this|the)\b"
)


def _addresses_ai(low: str, words: set[str]) -> bool:
    """Text speaking to the model: "Dear AI assistant", "Note to the model:", "If you are an
    LLM", "AI systems processing this text", "Assistant, do ..."."""
    if _AI_WORDS.isdisjoint(words):
        return False
    for word in words.intersection(_TO_AI):
        pattern = _TO_AI[word]
        at, tried = low.find(word), 0
        while at >= 0 and tried < 64:
            tried += 1
            if (at == 0 or not low[at - 1].isalnum()) and pattern.match(low, at):
                return True
            at = low.find(word, at + len(word))
    for word in _AT_WORK & words:
        at = low.find(word)
        if at >= 0 and _AI_AT_WORK.search(low, max(0, at - 30), at + len(word) + 6):
            return True
    # "Assistant, ignore ..." at the start of a sentence.
    for word in _AI_WORDS & words:
        at = low.find(word + ",")
        while at >= 0:
            if low[max(0, at - 2) : at].strip() in ("", ".", "!", "?", ":") or at == 0:
                return True
            at = low.find(word + ",", at + 1)
    return False


_DECODE = _Rule(
    re.compile(
        r"\bdecode\b[^\n]{0,80}?\b(?:follow|do|execute|carry out|obey|run)\b"
        r"|\b(?:follow|execute|run|do)\b[^\n]{0,40}?\b(?:base64|hex|decoded)\b"
        r"|\bexecute\s*:"
    ),
    _w("decode base64 hex decoded execute"),
    before=50,
    after=90,
)
_B64_BLOB = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_HEX_BLOB = re.compile(r"\b(?:[0-9a-fA-F]{2}){24,}\b")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,")
_ENCODED_INSTRUCTION = re.compile(
    rf"\b{_OVERRIDE_VERB}\b|\byou are now\b|\bdan\b|\bjailbr|\bno restrictions\b|{_LEAK_TARGET}"
)
_META = _Rule(
    re.compile(
        r"\b(?:what|how|why|explain|describe|is it|can an?|list|summari[sz]e|write a|examples? of"
        r"|difference between|evaluate|detect)\b[^\n]{0,80}?"
        r"\b(?:prompt[- ]injection|injections?|jailbreak(?:s|ing)?|attacks?|defen[cs]es?|mitigations?"
        r"|security|classifier|red-?team\w*|phishing|researchers?)\b"
        r"|\b(?:prompt[- ]injection|jailbreak(?:s|ing)?|attacks?)\b[^\n]{0,80}?\b(?:work|defen[cs]\w*"
        r"|protect\w*|mitigat\w*|detect\w*|flag|classif\w*|test cases?|literature|research\w*)\b"
    ),
    _w(
        "injection injections jailbreak jailbreaks jailbreaking attack attacks defence defense "
        "defences defenses mitigation mitigations security classifier red redteam phishing "
        "researchers research"
    ),
    before=90,
    after=90,
)
_QUOTED = _Rule(
    re.compile(
        r"[\"'“‘«„]\s*(?:ignore|disregard|forget|you are now|jailbreak|developer mode|do anything)"
    ),
    _w("ignore disregard forget you jailbreak developer do"),
    before=4,
    after=0,
)
_CODE_MARKS = (
    "```", "def ", "import ", "{%", "()", "= [", "= {", '= "', "= '", "const ", "tokenizer",
    "template", 'f"', "\n    ", "();", "return ",
)  # fmt: skip
_CORRECTION = _Rule(
    re.compile(
        r"\b(?:previous|last|earlier|above|old|first|prior) (?:e-?mail|message|mail|draft|version"
        r"|file|invoice|quote|order|update|announcement|spreadsheet|schedule|note)s?\b"
        r"|\bcorrected version\b|\bwrong (?:file|chat|spreadsheet|attachment)\b"
    ),
    _w(
        "email mail message draft version file invoice quote order update announcement "
        "spreadsheet schedule note emails messages"
    ),
    gate=(_w("previous last earlier above old first prior corrected wrong"),),
    before=14,
    after=2,
)


def _decoded_texts(raw: str) -> Iterator[str]:
    """Readable text hidden in long base64 or hex runs (at most four, each up to 4 kB)."""
    found = 0
    for m in _B64_BLOB.finditer(raw):
        blob = m.group()[:4096]
        try:
            data = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        yield data.decode("utf-8", "replace")
        found += 1
        if found >= 4:
            return
    for m in _HEX_BLOB.finditer(raw):
        try:
            yield bytes.fromhex(m.group()[:8192]).decode("utf-8", "replace")
        except ValueError:
            continue
        found += 1
        if found >= 4:
            return


def _readable(decoded: str) -> bool:
    if len(decoded) < 12:
        return False
    printable = sum(1 for c in decoded[:400] if c.isprintable() and c != "\ufffd")
    return printable / min(len(decoded), 400) > 0.9 and " " in decoded


# ----------------------------------------------------------------------------- scoring


def features_of(text: str, *, source: str = "user") -> set[str]:
    """The names of the features that fire on text, read as coming from source."""
    low, fired = _normalise(text)
    raw = low if low.isascii() else low.translate(_TYPOGRAPHIC)
    encoded = raw.encode()
    pieces = encoded.translate(_BYTE_SEPARATORS).split()
    words = {w.decode() for w in _VOCABULARY_BYTES.intersection(pieces)}
    m = _OVERRIDE.search(low, words) if not _OVERRIDE.anchors.isdisjoint(words) else None
    if m:
        fired.add("own_correction" if _OWN.search(m.group()) else "override_instructions")
    for name, rule in _PHRASE_RULES:
        if name not in fired and not rule.anchors.isdisjoint(words) and rule.search(low, words):
            fired.add(name)
    if "no_restrictions" in fired and _ROLEPLAY.search(low, words):
        fired.add("roleplay_escape")
    m = _LEAK_TARGET_RULE.search(low, words)
    if m:
        start = m.start()
        leak = _LEAK_REQUEST.search(low, max(0, start - 160), m.end())
        fired.add("leak_request" if leak else "leak_target")
    if ("<" in low or "[" in low) and _CHAT_TEMPLATE.search(low):
        fired.add("chat_template_token")
    if _role_line(low, words):
        fired.add("role_line")
    if "](" in low and _EXFIL_IMAGE.search(low):
        fired.add("exfil_markdown_image")
    if "addresses_ai" not in fired and _addresses_ai(low, words):
        fired.add("addresses_ai")
    if _B64_RUN in encoded.translate(_B64_ALPHABET) and (
        _B64_BLOB.search(text) or _HEX_BLOB.search(text)
    ):
        fired.add("long_encoded_blob")
        if "base64," in low and _DATA_URI.search(low):
            fired.add("data_uri")
        for decoded in _decoded_texts(text):
            if _readable(decoded) and _ENCODED_INSTRUCTION.search(decoded.lower()):
                fired.add("encoded_instruction")
                break
    if source == "tool":
        if "addresses_ai" in fired:
            fired.add("tool_addresses_ai")
        if not fired.isdisjoint(_INSTRUCTION_FEATURES):
            fired.add("tool_instruction")
    if fired.isdisjoint(_ATTACK_FEATURES):
        return fired
    # Benign context only matters once something looked like an attack.
    if _META.search(low, words):
        fired.add("meta_discussion")
    if _QUOTED.search(low, words):
        fired.add("quoted_phrase")
    if any(mark in low for mark in _CODE_MARKS):
        fired.add("code_context")
    if _CORRECTION.search(low, words):
        fired.add("own_correction")
    return fired


_INSTRUCTION_FEATURES = frozenset(
    {
        "override_instructions",
        "override_context",
        "new_instructions",
        "you_are_now",
        "leak_request",
        "exfil_send",
        "exfil_markdown_image",
        "secrecy",
    }
)
# "The assistant must now ...": a directive about the model, in the third person.
_DIRECTS_AI = _Rule(
    re.compile(
        r"\b(?:the )?(?:assistant|ai|model|chatbot|llm|bot)s? (?:must|will|should|shall|is to|has to)"
        r" (?:now|from now on|immediately|always|also|instead)\b"
    ),
    _w("must will should shall has is"),
    gate=(_w("assistant ai model chatbot llm bot"),),
    before=24,
    after=22,
)
_PHRASE_RULES: tuple[tuple[str, _Rule], ...] = (
    *(("override_context", rule) for rule in _OVERRIDE_CONTEXT),
    ("new_instructions", _NEW_INSTRUCTIONS),
    ("you_are_now", _YOU_ARE_NOW),
    ("jailbreak_term", _JAILBREAK),
    ("no_restrictions", _NO_RESTRICTIONS),
    *(("exfil_send", rule) for rule in _EXFIL_SEND),
    ("secrecy", _SECRECY),
    ("urgent_marker", _URGENT),
    ("decode_and_follow", _DECODE),
    ("addresses_ai", _DIRECTS_AI),
)
_VOCABULARY = frozenset().union(
    *(
        rule.anchors.union(*rule.gate)
        for rule in list(globals().values())
        if isinstance(rule, _Rule)
    ),
    *(rule.anchors.union(*rule.gate) for rule in (*_OVERRIDE_CONTEXT, *_EXFIL_SEND)),
    _ROLE_WORDS,
    _AI_WORDS,
    _AT_WORK,
    frozenset(_TO_AI),
)
_VOCABULARY_BYTES = frozenset(word.encode() for word in _VOCABULARY)
_ATTACK_FEATURES = frozenset(name for name, weight in WEIGHTS.items() if weight > 0)


def score_features(fired: Iterable[str], *, source: str = "user") -> tuple[float, tuple[str, ...]]:
    """The logistic score of a set of fired features, and the attack features by weight.

    With no attack feature fired the score is 0: benign context alone is no evidence."""
    ordered = sorted((n for n in fired if WEIGHTS.get(n, 0.0) > 0), key=lambda n: -WEIGHTS[n])
    if not ordered:
        return 0.0, ()
    z = BIAS + sum(WEIGHTS.get(name, 0.0) for name in fired)
    if source == "system":
        z += SYSTEM_OFFSET
    score = 1.0 / (1.0 + math.exp(-z)) if z > -40 else 0.0
    return score, tuple(ordered)


def score_text(text: str, *, source: str = "user") -> InjectionVerdict:
    """Score one text. source is "user", "system" or "tool" (tool results weigh more)."""
    if not isinstance(text, str) or not text:
        return InjectionVerdict(0.0, (), "", -1)
    score, names = score_features(features_of(text, source=source), source=source)
    return InjectionVerdict(score, names, source, 0)


# ----------------------------------------------------------------------------- messages

_ROLE_SOURCE = {
    "user": "user",
    "tool": "tool",
    "function": "tool",
    "system": "system",
    "developer": "system",
}
_TEXT_PARTS = ("text", "input_text")


def _texts_of(content: object, source: str) -> Iterator[tuple[str, str]]:
    """(text, source) for every text inside a message's content, skipping odd shapes."""
    if isinstance(content, str):
        yield content, source
        return
    if not isinstance(content, list):
        return
    for part in content:
        if not isinstance(part, dict):
            if isinstance(part, str):
                yield part, source
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            text = part.get("text")
            if isinstance(text, str):
                yield text, source
        elif kind == "tool_result":
            yield from _texts_of(part.get("content"), "tool")


def scan_messages(messages: list[dict]) -> InjectionVerdict:
    """OpenAI chat messages (role + content as str or a list of parts with type 'text';
    tool results are role 'tool'; Anthropic-shaped tool_result blocks inside user
    content also count as 'tool'). The highest score over the parts. Never raises on odd
    shapes (non-str content, missing fields): skips them."""
    best = InjectionVerdict(0.0, (), "", -1)
    if not isinstance(messages, list):
        return best
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        source = _ROLE_SOURCE.get(role) if isinstance(role, str) else None
        if source is None:
            continue
        for text, part_source in _texts_of(message.get("content"), source):
            if not text:
                continue
            fired = features_of(text, source=part_source)
            if not fired:
                continue
            score, names = score_features(fired, source=part_source)
            if score > best.score:
                best = InjectionVerdict(score, names, part_source, index)
    return best
