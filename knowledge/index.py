"""The matcher's index: analysed phrasings, answers and vocabulary, changed in place entry by entry."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from rapidfuzz.distance import OSA, Hamming

from knowledge.entry import Category, Entry
from knowledge.normalise import (
    EN_STOP_WORDS,
    SynonymMap,
    bigrams,
    content_runs,
    has_cjk,
    is_cjk,
    normalise,
    pinyin,
    word_term,
)

MAX_QUERY_TERMS = 48
"""Terms of a question that are looked at; the rest of a very long question is ignored."""
MAX_PHRASING_TERMS = 64
MAX_ANSWER_UNITS = 60
MAX_ANSWER_CHARS = 600
"""The start of an answer says what it is about; the rest would only cost time and memory."""
_ANSWER_KEY_CHARS = 300
"""Entries whose answers start alike say the same thing: one answer, to the citizen."""
_MIN_CORRECTED_WORD = 4
_MAX_PINYIN_CHARS = 3

Runs = list[tuple[bool, str]]
_EMPTY: set[int] = set()
_MARKUP = re.compile(r"<[^>]*>")
_NONE: frozenset[str] = frozenset()
V = TypeVar("V")


@dataclass(frozen=True)
class Analysis:
    """What the matcher compares of one text."""

    terms: frozenset[str]
    """Word stems and Chinese character bigrams (order inside a word)."""
    units: frozenset[str]
    """Word stems and single Chinese characters (how much of a text is covered)."""
    pairs: frozenset[str]
    """Adjacent content words ("side effect", "how long"): phrases, not just words."""
    text: str
    """The normalised text the analysis was made from, after synonyms and corrections."""


def analyse_runs(runs: Iterable[tuple[bool, str]], text: str, max_terms: int) -> Analysis:
    """Build the analysis of content runs, keeping at most ``max_terms`` terms."""
    terms: list[str] = []
    units: list[str] = []
    words: list[str] = []
    for cjk, run in runs:
        if len(terms) >= max_terms:
            break
        if cjk:
            terms.extend(bigrams(run))
            units.extend(run)
        else:
            word = word_term(run)
            terms.append(word)
            units.append(word)
            words.append(word)
    pairs = {f"{a} {b}" for a, b in itertools.pairwise(words)}
    return Analysis(frozenset(terms[:max_terms]), frozenset(units), frozenset(pairs), text)


def units_of(text: str, max_units: int) -> frozenset[str]:
    """The first ``max_units`` units (stems, Chinese characters) of normalised ``text``."""
    if not has_cjk(text):  # most answers: a faster path for the longest texts indexed
        words = [word for word in text.split() if word not in EN_STOP_WORDS]
        return frozenset(map(word_term, words[:max_units]))
    units: list[str] = []
    runs = content_runs(text)
    for cjk, run in runs:
        if len(units) >= max_units:
            break
        if cjk:
            units.extend(run)
        else:
            units.append(word_term(run))
    return frozenset(units[:max_units])


def _answer_text(entry: Entry) -> str:
    """Answers in every language, without markup: tags and link targets are not what they say."""
    joined = " ".join(text for _, text in sorted(entry.answer.items()) if isinstance(text, str))
    return _MARKUP.sub(" ", joined)


@dataclass
class IndexedEntry:
    """One entry and what the index keeps of it."""

    entry: Entry
    serial: int
    docs: list[int]
    answer_units: frozenset[str]
    keyword_units: frozenset[str]
    category_units: frozenset[str]
    answer_key: str
    """Entries with equal keys say the same thing (see :meth:`Index.group`)."""
    words: Counter[str] = field(default_factory=Counter)
    """Surface words of its phrasings, for the typo and pinyin vocabularies."""


class Index:
    """Inverted index over entries' phrasings (question and alternatives) and answers."""

    def __init__(self, categories: Iterable[Category] = (), synonyms: SynonymMap | None = None) -> None:
        self.synonyms = synonyms or SynonymMap()
        self.categories: dict[str, Category] = {c.code: c for c in categories}
        self.entries: dict[str, IndexedEntry] = {}
        self.docs: dict[int, tuple[str, Analysis]] = {}
        self.groups: dict[str, set[str]] = {}
        self._next_doc = 0
        self._next_serial = 0
        self._terms: dict[str, set[int]] = {}
        self._units: dict[str, set[int]] = {}
        self._pairs: dict[str, set[int]] = {}
        self._answers: dict[str, set[int]] = {}
        self._by_kind = {"term": self._terms, "unit": self._units, "pair": self._pairs}
        self._idf_cache: dict[tuple[str, str], float] = {}
        self._doc_weight_cache: dict[int, float] = {}
        self.selection_inverses: list[float] = []
        """1 / the phrasing weight for choosing candidates, by phrasing number, 0.0 until computed; kept
        through small changes (:meth:`selection_inverse`). A list: choosing reads up to 2,000 a question."""
        self._selection_size = 0
        """How many phrasings there were when the selection weights were last started afresh."""
        self._category_cache: dict[str, frozenset[str]] = {}
        self.serials: dict[int, str] = {}
        """Entry ids by serial number: postings hold numbers, which are cheap and iterate in order."""
        self._cjk_docs = 0
        self._latin_docs = 0
        self._words: Counter[str] = Counter()
        self._deletions: dict[str, set[str]] = {}
        self._pinyin: dict[str, Counter[str]] = {}

    # -- building -------------------------------------------------------------------------

    def add(self, entry: Entry) -> None:
        """Index ``entry``, replacing an entry with the same id."""
        self.remove(entry.id)
        self._forget_statistics()
        answer = normalise(_answer_text(entry)[:MAX_ANSWER_CHARS])
        item = IndexedEntry(
            entry=entry,
            serial=self._next_serial,
            docs=[],
            answer_units=units_of(self.synonyms.apply(answer), MAX_ANSWER_UNITS),
            keyword_units=self._unit_set(" ".join(_flatten(entry.keywords))),
            category_units=self._category_units(entry.category),
            answer_key=answer[:_ANSWER_KEY_CHARS],
        )
        self._next_serial += 1
        for text in _phrasings(entry):
            runs = self._runs(text)
            analysis = analyse_runs(runs, text, MAX_PHRASING_TERMS)
            if analysis.units:
                item.docs.append(self._add_doc(entry.id, analysis, runs))
                item.words.update(run for cjk, run in runs if not cjk)
                self._add_pinyin(runs, 1)
        self._add_words(item.words)
        self.serials[item.serial] = entry.id
        for unit in item.answer_units:
            self._answers.setdefault(unit, set()).add(item.serial)
        self.entries[entry.id] = item
        self.groups.setdefault(item.answer_key, set()).add(entry.id)

    def remove(self, entry_id: str) -> None:
        """Forget the entry ``entry_id``; unknown ids are ignored."""
        item = self.entries.pop(entry_id, None)
        if item is None:
            return
        self._forget_statistics()
        del self.serials[item.serial]
        for doc in item.docs:
            self._remove_doc(doc)
        self._remove_words(item.words)
        for unit in item.answer_units:
            _discard(self._answers, unit, item.serial)
        group = self.groups.get(item.answer_key)
        if group is not None:
            group.discard(entry_id)
            if not group:
                del self.groups[item.answer_key]

    def _forget_statistics(self) -> None:
        """Drop cached IDF values: every change of the index changes them a little.

        The selection weights go only once the number of phrasings has moved by more than a tenth
        (a large import into a running bot, entry by entry): then the IDF has moved too.
        """
        if self._idf_cache or self._doc_weight_cache:
            self._idf_cache.clear()
            self._doc_weight_cache.clear()
        if abs(len(self.docs) - self._selection_size) > self._selection_size // 10:
            self.selection_inverses = [0.0] * len(self.selection_inverses)
            self._selection_size = len(self.docs)

    def _add_doc(self, entry_id: str, analysis: Analysis, runs: Runs) -> int:
        doc = self._next_doc
        self._next_doc += 1
        self.selection_inverses.append(0.0)  # numbered as the phrasings are
        self.docs[doc] = (entry_id, analysis)
        for postings, keys in self._postings(analysis):
            for key in keys:
                found = postings.get(key)
                if found is None:
                    postings[key] = {doc}
                else:
                    found.add(doc)
        self._count_scripts(runs, 1)
        return doc

    def _remove_doc(self, doc: int) -> None:
        _, analysis = self.docs.pop(doc)
        self.selection_inverses[doc] = 0.0
        for postings, keys in self._postings(analysis):
            for key in keys:
                _discard(postings, key, doc)
        runs = self._runs(analysis.text)
        self._count_scripts(runs, -1)
        self._add_pinyin(runs, -1)

    def _postings(self, analysis: Analysis) -> Iterator[tuple[dict[str, set[int]], frozenset[str]]]:
        yield self._terms, analysis.terms
        yield self._units, analysis.units
        yield self._pairs, analysis.pairs

    def _count_scripts(self, runs: Runs, delta: int) -> None:
        """Count phrasings per script: IDF compares a Chinese term with Chinese phrasings only."""
        if any(cjk for cjk, _ in runs):
            self._cjk_docs += delta
        if not all(cjk for cjk, _ in runs):
            self._latin_docs += delta

    def _category_units(self, code: str) -> frozenset[str]:
        units = self._category_cache.get(code)
        if units is None:
            units = self._category_cache[code] = self._analyse_category(code)
        return units

    def _analyse_category(self, code: str) -> frozenset[str]:
        category = self.categories.get(code)
        names = [code, *(category.name.values() if category else ())]
        return self._unit_set(" ".join(names))

    def _runs(self, text: str) -> Runs:
        return list(content_runs(self.synonyms.apply(text)))

    def _unit_set(self, text: str) -> frozenset[str]:
        return units_of(self.synonyms.apply(normalise(text)), MAX_PHRASING_TERMS) if text else _NONE

    # -- vocabularies for corrections -------------------------------------------------------

    def _add_words(self, words: Counter[str]) -> None:
        for word, count in words.items():
            if self._words[word] == 0 and len(word) >= _MIN_CORRECTED_WORD:
                for key in _deletions(word):
                    self._deletions.setdefault(key, set()).add(word)
            self._words[word] += count

    def _remove_words(self, words: Counter[str]) -> None:
        for word, count in words.items():
            self._words[word] -= count
            if self._words[word] <= 0:
                del self._words[word]
                for key in _deletions(word):
                    _discard(self._deletions, key, word)

    def _add_pinyin(self, runs: Runs, delta: int) -> None:
        for cjk, run in runs:
            if not cjk:
                continue
            for size in range(2, min(len(run), _MAX_PINYIN_CHARS) + 1):
                for start in range(len(run) - size + 1):
                    chunk = run[start : start + size]
                    counts = self._pinyin.setdefault(pinyin(chunk), Counter())
                    counts[chunk] += delta
                    if counts[chunk] <= 0:
                        del counts[chunk]

    # -- queries ---------------------------------------------------------------------------

    def analyse_query(self, normalised: str) -> Analysis:
        """Analyse a normalised question, correcting typos, pinyin and homophones the index can resolve."""
        text = self.synonyms.apply(normalised)
        runs: Runs = []
        for cjk, run in content_runs(text):
            if cjk:
                runs.append((True, self._correct_homophones(run)))
            else:
                runs.extend(self._correct_word(run))
            if len(runs) >= MAX_QUERY_TERMS:
                break
        corrected = " ".join(run for _, run in runs)
        return analyse_runs(runs, corrected, MAX_QUERY_TERMS)

    def _correct_word(self, word: str) -> Runs:
        if word_term(word) in self._terms or len(word) < _MIN_CORRECTED_WORD or not word.isalpha():
            return [(False, word)]
        chunks = self._pinyin.get(word)
        if chunks:
            return [(True, chunks.most_common(1)[0][0])]
        near = {w for key in _deletions(word) for w in self._deletions.get(key, ())}
        near = {w for w in near if _one_edit(word, w)}
        if near:
            return [(False, max(sorted(near), key=lambda w: self._words[w]))]
        return [(False, word)]

    def _correct_homophones(self, run: str) -> str:
        chars = list(run)
        for i in range(len(chars) - 1):
            pair = chars[i] + chars[i + 1]
            if pair in self._terms:
                continue
            sounds_alike = self._pinyin.get(pinyin(pair), Counter())
            # A typo changes one character; two changed characters are a different word.
            options = [(n, c) for c, n in sounds_alike.items() if len(c) == 2 and _one_char_differs(pair, c)]
            if options:
                _, best = max(options)
                chars[i], chars[i + 1] = best[0], best[1]
        return "".join(chars)

    # -- statistics for scoring ------------------------------------------------------------

    def idf(self, key: str, kind: str = "unit") -> float:
        """Inverse document frequency of a term, unit or pair among phrasings of its script.

        Kept only for keys of the knowledge base: citizens' own words (names, typos) would grow the cache
        without end in a running bot, and a key no phrasing has costs no more to weigh afresh.
        """
        cache_key = (kind, key)
        value = self._idf_cache.get(cache_key)
        if value is None:
            total = self._cjk_docs if is_cjk(key) else self._latin_docs
            df = len(self.postings(key, kind))
            value = math.log(1.0 + (max(total, df) - df + 0.5) / (df + 0.5))
            if df:
                self._idf_cache[cache_key] = value
        return value

    def doc_weight(self, doc: int) -> float:
        """Summed IDF of a phrasing's units (how much there is of it to cover)."""
        value = self._doc_weight_cache.get(doc)
        if value is None:
            value = sum(self.idf(unit) for unit in self.docs[doc][1].units)
            self._doc_weight_cache[doc] = value
        return value

    def selection_inverse(self, doc: int) -> float:
        """1 / :meth:`doc_weight` as it was when first asked for (or at :meth:`prepare_selection`).

        Choosing candidates weighs every phrasing that shares a unit with the question, up to 2,000 of
        them: recomputing each weight after every change would cost a query several milliseconds, and
        the slight drift of the IDF as a few entries come and go does not matter for the choice.
        """
        value = self.selection_inverses[doc]
        if not value:
            value = self.selection_inverses[doc] = 1.0 / (self.doc_weight(doc) or 1.0)
        return value

    def prepare_selection(self) -> None:
        """Compute every phrasing's selection weight now, after a bulk build, rather than in queries."""
        self._selection_size = len(self.docs)
        for doc in self.docs:
            self.selection_inverse(doc)

    def postings(self, key: str, kind: str) -> set[int]:
        """Phrasings that contain ``key`` (a term, unit or pair)."""
        return self._by_kind[kind].get(key, _EMPTY)

    def answer_postings(self, unit: str) -> set[int]:
        """Entries (by serial) whose answer contains ``unit``."""
        return self._answers.get(unit, _EMPTY)

    def group(self, entry_id: str) -> set[str]:
        """Entries with the same answer as ``entry_id`` (itself included)."""
        item = self.entries.get(entry_id)
        return self.groups.get(item.answer_key, {entry_id}) if item else set()

    def __len__(self) -> int:
        return len(self.entries)


def _phrasings(entry: Entry) -> list[str]:
    texts = [*entry.question.values(), *_flatten(entry.alternatives)]
    return list(dict.fromkeys(normalise(t) for t in texts if isinstance(t, str) and t.strip()))


def _flatten(values: Mapping[str, list[str]]) -> list[str]:
    return [text for texts in values.values() for text in texts if isinstance(text, str)]


def _discard(postings: dict[str, set[V]], key: str, value: V) -> None:
    found = postings.get(key)
    if found is not None:
        found.discard(value)
        if not found:
            del postings[key]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))} | {word}


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one insertion, deletion, substitution or swap of neighbours."""
    return OSA.distance(a, b, score_cutoff=1) == 1


def _one_char_differs(a: str, b: str) -> bool:
    return Hamming.distance(a, b, score_cutoff=1) == 1
