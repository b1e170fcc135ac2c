"""Scoring entries against a question: candidate selection, then weighted lexical signals."""

from __future__ import annotations

import heapq
import itertools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TypeVar

from knowledge.entry import Entry
from knowledge.index import Analysis, Index

CANDIDATES = 20
"""Entries scored in full per question, chosen through the inverted index."""
ANSWER_CANDIDATES = 8
"""Extra candidates found through their answer text alone."""
DOC_BUDGET = 2000
"""Phrasing postings visited per question to find candidates: bounds the work at any size."""
ANSWER_BUDGET = 600
"""Answer postings visited per question."""
UNDETERMINED_TRUST = 0.85
"""Score factor for entries whose only language is "und" (undetermined): text imported without a
language tag is often a copy from elsewhere, so it yields to an entry written for this knowledge base."""
DOCS_PER_ENTRY = 3
"""Phrasings of an entry scored in full: those sharing most with the question."""


@dataclass(frozen=True)
class Weights:
    """How much each signal counts (set on the dev sets, 2-fold cross-validated; docs/PERFORMANCE.md).

    A question that is exactly an entry's question scores about 0.85 from the phrasing signals,
    plus whatever its answer, keywords and category add.
    """

    terms: float = 0.15
    """Share of the question's weighted terms (stems, Chinese bigrams) found in the phrasing."""
    units: float = 0.25
    """Share of the question's weighted units (stems, Chinese characters) found in the phrasing."""
    phrasing: float = 0.15
    """Share of the phrasing's weighted units found in the question."""
    pairs: float = 0.3
    """Share of the question's adjacent word pairs found in the phrasing."""
    answer: float = 0.16
    """Share of the question's weighted units found in the answer."""
    keywords: float = 0.15
    """Share of the question's weighted units found in the entry's keywords."""
    category: float = 0.3
    """Share of the question's weighted units found in the entry's category code and name."""


SIGNALS = tuple(f.name for f in fields(Weights))
K = TypeVar("K")


@dataclass(frozen=True)
class Scored:
    """An entry's score for one question and the signals it was computed from."""

    entry_id: str
    score: float
    signals: dict[str, float]


def score_entries(
    index: Index, query: Analysis, weights: Weights, keep: Callable[[Entry], bool], limit: int = 10
) -> list[Scored]:
    """The best ``limit`` entries for ``query`` among those ``keep`` accepts, best first.

    Entries with the same answer are one candidate: they share their phrasings, and the
    member whose own phrasing matches best stands for them.
    """
    if not query.units:
        return []
    weighted = _QueryWeights.of(index, query)
    by_doc = _accumulate([(index.postings(u, "unit"), v) for u, v in weighted.units.items()], DOC_BUDGET)
    by_answer = _accumulate([(index.answer_postings(u), v) for u, v in weighted.units.items()], ANSWER_BUDGET)
    chosen = _top(_coverage(index, weighted, by_doc, weights), lambda doc: index.docs[doc][0], index, keep,
                  CANDIDATES)
    chosen |= _top(by_answer, index.serials.__getitem__, index, keep, ANSWER_CANDIDATES)
    groups: dict[str, list[str]] = {}
    for entry_id in sorted(chosen):
        groups.setdefault(index.entries[entry_id].answer_key, []).append(entry_id)
    scored = [_score_group(index, weighted, members, by_doc, weights, keep) for members in groups.values()]
    scored.sort(key=lambda s: (-s.score, s.entry_id))
    return scored[:limit]


def _coverage(
    index: Index, weighted: _QueryWeights, by_doc: dict[int, float], weights: Weights
) -> dict[int, float]:
    """Each phrasing's part of the full score from coverage: of the question's units, and of its own.

    Candidates chosen by the weight they share with the question alone miss a short phrasing that a
    long question covers whole, once thousands of other entries share the question's common words.
    """
    question, own, known = weights.units / weighted.units_total, weights.phrasing, index.selection_inverses
    return {doc: shared * (question + own * (known[doc] or index.selection_inverse(doc)))
            for doc, shared in by_doc.items()}


@dataclass(frozen=True)
class _QueryWeights:
    """IDF of the question's terms, units and pairs, computed once per question."""

    query: Analysis
    terms: dict[str, float]
    units: dict[str, float]
    pairs: dict[str, float]
    terms_total: float
    units_total: float
    pairs_total: float

    @classmethod
    def of(cls, index: Index, query: Analysis) -> _QueryWeights:
        terms = {t: index.idf(t, "term") for t in query.terms}
        units = {u: index.idf(u) for u in query.units}
        pairs = {p: index.idf(p, "pair") for p in query.pairs}
        return cls(query, terms, units, pairs, sum(terms.values()), sum(units.values()), sum(pairs.values()))


def _accumulate(postings: list[tuple[set[K], float]], budget: int) -> dict[K, float]:
    """Sum each key's weights over ``postings``, rarest first, visiting at most ``budget`` postings.

    A unit too common to fit the budget selects no candidates (its weight is small anyway,
    and the full scoring still counts it), unless nothing rarer matched at all.
    """
    totals: dict[K, float] = {}
    for keys, value in sorted(postings, key=lambda p: len(p[0])):
        if totals and len(keys) > budget:
            break
        for key in itertools.islice(keys, max(budget, 1)):
            totals[key] = totals.get(key, 0.0) + value
        budget -= min(len(keys), budget)
    return totals


def _top(
    totals: dict[int, float],
    entry_of: Callable[[int], str],
    index: Index,
    keep: Callable[[Entry], bool],
    count: int,
) -> set[str]:
    """The ``count`` entries with the best totals that ``keep`` accepts (several keys may share an entry)."""
    wanted = count * 4
    while True:
        best = heapq.nlargest(wanted, totals.items(), key=operator.itemgetter(1))
        chosen: set[str] = set()
        for key, _ in best:
            entry_id = entry_of(key)
            if entry_id not in chosen and keep(index.entries[entry_id].entry):
                chosen.add(entry_id)
                if len(chosen) >= count:
                    return chosen
        if len(best) < wanted:  # looked at everything
            return chosen
        wanted *= 4


def _score_group(
    index: Index,
    weighted: _QueryWeights,
    members: list[str],
    by_doc: dict[int, float],
    weights: Weights,
    keep: Callable[[Entry], bool],
) -> Scored:
    """Score an answer group: its best phrasing, and the answer, keywords and category of its best member."""
    phrase_weights = (weights.terms, weights.units, weights.phrasing, weights.pairs)
    best: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    best_value = -1.0
    own: dict[str, float] = {}
    for member in sorted(index.group(members[0])):
        if member not in members and not keep(index.entries[member].entry):
            continue
        # Only phrasings that share a unit with the question can score; the best few suffice.
        matched = [(by_doc[d], d) for d in index.entries[member].docs if d in by_doc]
        for _, doc in heapq.nlargest(DOCS_PER_ENTRY, matched):
            signals = _phrasing_signals(index, weighted, doc)
            value = sum(w * v for w, v in zip(phrase_weights, signals, strict=True))
            own[member] = max(own.get(member, -1.0), value)
            if value > best_value:
                best, best_value = signals, value
    chosen = max(members, key=lambda m: own.get(m, -1.0))
    item = index.entries[chosen]
    units, total = weighted.query.units, weighted.units_total
    explained = dict(zip(("terms", "units", "phrasing", "pairs"), best, strict=True))
    explained["answer"] = _share(weighted.units, units & item.answer_units, total)
    explained["keywords"] = _share(weighted.units, units & item.keyword_units, total)
    explained["category"] = _share(weighted.units, units & item.category_units, total)
    # The factor is part of the explanation: without it the signals would not add up to the score.
    explained["trust"] = UNDETERMINED_TRUST if _undetermined(item.entry) else 1.0
    score = sum(getattr(weights, name) * explained[name] for name in SIGNALS) * explained["trust"]
    return Scored(chosen, score, explained)


def _phrasing_signals(index: Index, weighted: _QueryWeights, doc: int) -> tuple[float, float, float, float]:
    """Shares of the question's terms and units, of the phrasing's units, and of the question's pairs."""
    query, analysis = weighted.query, index.docs[doc][1]
    matched_units = sum(weighted.units[u] for u in query.units & analysis.units)
    doc_total = index.doc_weight(doc)
    return (
        _share(weighted.terms, query.terms & analysis.terms, weighted.terms_total),
        matched_units / weighted.units_total if weighted.units_total else 0.0,
        matched_units / doc_total if doc_total else 0.0,
        _share(weighted.pairs, query.pairs & analysis.pairs, weighted.pairs_total),
    )


def _share(weights: dict[str, float], keys: Iterable[str], total: float) -> float:
    """The weight of ``keys`` as a share of ``total`` (0 when there is nothing to share)."""
    return sum(weights[k] for k in keys) / total if total > 0 else 0.0


def _undetermined(entry: Entry) -> bool:
    """Whether the entry's text carries no language tag but "und"."""
    return all(lang == "und" for lang in entry.question)
