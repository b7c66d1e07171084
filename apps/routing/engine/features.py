"""Prompt features for task clustering: hashed word and character n-grams, TF-IDF, L2-normed.

The method, chosen to cost well under 100 microseconds in plain Python for a 500-token
prompt (no numpy: it is not a dependency, and at this size a dict beats array set-up):

- Words are the whitespace-separated pieces of the lower-cased text once ASCII
  punctuation is turned into spaces (one C-level `str.translate`; a regular expression
  costs four times as much). The symbols that mark code and structured data (`{ } ( ) ;
  = < > [ ] #`) are counted separately and become tokens of their own: `{` and `;` say
  "code" as clearly as any word does.
- Each distinct word contributes its unigram and, when it has five letters or more, the
  character 4-gram at its start, `<abc` (scikit-learn's `char_wb` analyzer, kept to the
  word's start where the stem is: "summarize"/"summary", "translate"/"translation").
  Word bigrams and the other character n-grams were left out: they multiply the work and
  add little to telling kinds of requests apart.
- Features are hashed into 2**20 buckets with CRC-32 (stable across processes, unlike
  Python's salted `hash`).
- Term frequency is sublinear, `1 + log(count)`; a character n-gram weighs half a word.
- The instruction and the document are weighed apart: the instruction is the first line
  or clause (up to the first newline or colon, at most 240 characters) plus a short last
  line after the document. Each part is normalised on its own and the instruction gets
  INSTRUCTION_SHARE (0.8) of the vector, however long the document: "summarize" and
  "translate" the same text must land in different clusters, and a long pasted document
  would otherwise decide the cluster. Of the document, the first DOCUMENT_CHARS (600)
  characters are read: enough to tell code from prose from a table, and the cost stays
  flat however long the prompt.
- IDF is learned online, `idf = log((1 + N) / (1 + df)) + 1`. Document frequencies are
  counted for every document; the IDF table is recomputed when the document count has
  doubled (every 65,536 documents once past that many), so between two recomputations a
  word's weighted features are computed once and cached.
- English function words (STOP_WORDS) are skipped, and so are features whose IDF is below
  `MIN_IDF` (in nearly every prompt): they say nothing about the kind of request and
  would otherwise touch every cluster.
- The vector is L2-normalised and returned as a sparse dict {bucket: weight}.
"""

from __future__ import annotations

import math
import string
import zlib
from collections import Counter
from typing import Any

SparseVector = dict[int, float]

BUCKETS = 1 << 20
_MASK = BUCKETS - 1
CHAR_WEIGHT = 0.5
MIN_IDF = 1.15
MIN_DOCUMENTS_FOR_STOPWORDS = 100
FOCUS_CHARS = 240
INSTRUCTION_SHARE = 0.8
DOCUMENT_CHARS = 600
IDF_REFRESH_CAP = 65_536
# Bounded caches: a long-running process sees an open-ended vocabulary.
MAX_CACHED_TOKENS = 200_000
MAX_VOCAB_NAMES = 50_000

SYMBOLS = "{}();=<>[]#"

# English function words: in almost every prompt, they would tie every cluster to every
# other before IDF has seen enough documents to weigh them down.
_STOP_WORDS_TEXT = """
a about above after again all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers him his how i if in into is it its
just me more most my no nor not now of off on once only or other our out over own same
she should so some such than that the their them then there these they this those
through to too under until up very was we were what when where which while who whom
why will with would you your yours please following text
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation if c != "_"})


def _bucket(text: str) -> int:
    return zlib.crc32(text.encode()) & _MASK


def token_buckets(token: str) -> tuple[tuple[int, float], ...]:
    """The (bucket, weight) features of one token, before IDF."""
    if token in STOP_WORDS:
        return ()
    features = [(_bucket("w " + token), 1.0)]
    if len(token) >= 5 and token[0].isalpha():
        features.append((_bucket("c <" + token[:3]), CHAR_WEIGHT))
    return tuple(features)


def tokenize(text: str) -> Counter:
    """Word and symbol counts of lower-cased `text`."""
    counts = Counter(text.translate(_PUNCTUATION).split())
    for symbol in SYMBOLS:
        n = text.count(symbol)
        if n:
            counts[symbol] = n
    return counts


def split_instruction(text: str) -> tuple[str, str] | None:
    """(instruction, document) of a prompt: the instruction is the first line or clause
    and a short last line after the document. None when the whole prompt is the
    instruction."""
    cut = FOCUS_CHARS
    for separator in ("\n", ":"):
        at = text.find(separator, 10, FOCUS_CHARS)
        if at != -1 and at + 1 < cut:
            cut = at + 1
    if len(text) <= cut + 20:
        return None
    last = text.rfind("\n", cut + 20)
    # A short last line after the document is an instruction too ("Summarise the above.").
    if last != -1 and len(text) - last <= FOCUS_CHARS // 2:
        return text[:cut] + " " + text[last + 1 :], text[cut:last]
    return text[:cut], text[cut:]


def _normalise(vector: SparseVector) -> SparseVector:
    norm = math.sqrt(sum([v * v for v in vector.values()]))
    if norm > 0:
        inv = 1.0 / norm
        for bucket in vector:
            vector[bucket] *= inv
    return vector


class Featurizer:
    """Turns prompt text into L2-normalised sparse TF-IDF vectors, learning IDF online."""

    def __init__(self) -> None:
        self.documents = 0
        self.df: dict[int, int] = {}
        self._idf: dict[int, float] = {}
        self._idf_documents = 0
        self._unseen_idf = 1.0
        self._min_idf = 0.0
        self._raw: dict[str, tuple[tuple[int, float], ...]] = {}
        # token -> features weighted by the current IDF table; cleared when it changes.
        self._weighted: dict[str, tuple[tuple[int, float], ...]] = {}
        self.vocab: dict[int, str] = {}  # word bucket -> a word, for cluster labels

    def _raw_features(self, token: str) -> tuple[tuple[int, float], ...]:
        cached = self._raw.get(token)
        if cached is None:
            if len(self._raw) >= MAX_CACHED_TOKENS:
                self._raw.clear()
            cached = token_buckets(token)
            self._raw[token] = cached
            if cached and len(self.vocab) < MAX_VOCAB_NAMES and token[0].isalpha():
                self.vocab.setdefault(cached[0][0], token)
        return cached

    def _weighted_features(self, token: str) -> tuple[tuple[int, float], ...]:
        idf_get = self._idf.get
        unseen = self._unseen_idf
        min_idf = self._min_idf
        out = []
        for bucket, weight in self._raw_features(token):
            idf = idf_get(bucket, unseen)
            if idf >= min_idf:
                out.append((bucket, weight * idf))
        features = tuple(out)
        if len(self._weighted) >= MAX_CACHED_TOKENS:
            self._weighted.clear()
        self._weighted[token] = features
        return features

    def transform(self, text: str, *, learn: bool = False) -> SparseVector:
        """The vector of `text`; with `learn`, the text also counts towards IDF."""
        text = text.lower()
        if learn:
            self.learn_counts(tokenize(text))
        parts = split_instruction(text)
        if parts is None:
            return self._unit(tokenize(text))
        instruction = self._unit(tokenize(parts[0]))
        document = self._unit(tokenize(parts[1][:DOCUMENT_CHARS]))
        if not instruction:
            return document
        vector = {b: v * INSTRUCTION_SHARE for b, v in instruction.items()}
        get = vector.get
        rest = 1.0 - INSTRUCTION_SHARE
        for bucket, value in document.items():
            vector[bucket] = get(bucket, 0.0) + value * rest
        return _normalise(vector)

    def _unit(self, counts: Counter) -> SparseVector:
        weighted = self._weighted.get
        compute = self._weighted_features
        log = math.log
        vector: SparseVector = {}
        get = vector.get
        for token, count in counts.items():
            features = weighted(token)
            if features is None:
                features = compute(token)
            if not features:
                continue
            tf = 1.0 + log(count) if count > 1 else 1.0
            for bucket, weight in features:
                vector[bucket] = get(bucket, 0.0) + tf * weight
        return _normalise(vector)

    def learn_counts(self, counts: Counter) -> None:
        """Count one document's features towards document frequency."""
        self.documents += 1
        df = self.df
        seen: set[int] = set()
        raw = self._raw_features
        for token in counts:
            for bucket, _ in raw(token):
                if bucket not in seen:
                    seen.add(bucket)
                    df[bucket] = df.get(bucket, 0) + 1
        n = self.documents
        if n >= 2 * self._idf_documents or n - self._idf_documents >= IDF_REFRESH_CAP:
            self._refresh_idf()

    def learn(self, text: str) -> None:
        self.learn_counts(tokenize(text.lower()))

    def _refresh_idf(self) -> None:
        n = self.documents
        log = math.log
        self._idf = {b: log((1 + n) / (1 + d)) + 1.0 for b, d in self.df.items()}
        self._idf_documents = n
        self._unseen_idf = log(1 + n) + 1.0
        self._min_idf = MIN_IDF if n >= MIN_DOCUMENTS_FOR_STOPWORDS else 0.0
        self._weighted.clear()

    def state(self) -> dict[str, Any]:
        """What persisting needs: the document count and document frequencies."""
        # Features seen once are noise and would make the stored state large.
        df = {str(b): d for b, d in self.df.items() if d > 1}
        return {"documents": self.documents, "df": df}

    def load_state(self, state: dict[str, Any]) -> None:
        self.documents = int(state.get("documents", 0))
        self.df = {int(b): int(d) for b, d in (state.get("df") or {}).items()}
        self._refresh_idf()
