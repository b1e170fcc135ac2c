"""Finds the knowledge-base entry that answers a citizen's question, and says how sure it is.

A confident wrong answer from an official account is worse than "I don't know", so the
decision between answering, asking "did you mean" and admitting there is no answer rests on
several signals (best score, margin to the next different answer, how much of the question
the entry covers, question length), with thresholds calibrated on the evaluation sets.
"""

from __future__ import annotations

import enum
import gc
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from knowledge.entry import Entry, KnowledgeBase
from knowledge.index import Index
from knowledge.normalise import SynonymMap, normalise
from knowledge.scoring import Scored, Weights, score_entries

MAX_CANDIDATES = 10
RECENT_MATCHES = 1024
"""Matches a serving matcher keeps for questions asked again word for word (after normalising): citizens
ask the same few questions, and scoring one was an eighth of a Telegram update's CPU."""


class Decision(enum.StrEnum):
    """What the bot does with a question."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    NONE = "none"


@dataclass(frozen=True)
class Thresholds:
    """Limits of the decision; defaults calibrated on the evaluation sets (docs/PERFORMANCE.md)."""

    answer_score: float = 0.45
    """Best score needed to answer."""
    answer_margin: float = 0.15
    """Lead needed over the best candidate with a different answer."""
    answer_coverage: float = 0.8
    """Weighted share of the question the best entry must cover to answer."""
    min_units: int = 3
    """Content words (or Chinese characters) a question needs before it can be answered outright."""
    clarify_score: float = 0.18
    """Best score needed to offer "did you mean"; below it the matcher says it has no answer."""
    clarify_ratio: float = 0.5
    """Candidates offered in "did you mean" score at least this share of the best score."""


@dataclass(frozen=True)
class MatcherConfig:
    """Thresholds (global and per category), "did you mean" size and signal weights."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    category_thresholds: Mapping[str, Thresholds] = field(default_factory=lambda: MappingProxyType({}))
    max_clarify: int = 3
    weights: Weights = field(default_factory=Weights)

    def thresholds_for(self, category: str) -> Thresholds:
        """Thresholds that apply to an entry of ``category``."""
        return self.category_thresholds.get(category, self.thresholds)


@dataclass(frozen=True)
class Candidate:
    """An entry considered for a question, with the signals behind its score."""

    entry_id: str
    score: float
    signals: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"entry_id": self.entry_id, "score": round(self.score, 4), "signals": _rounded(self.signals)}


@dataclass(frozen=True)
class Match:
    """The matcher's verdict on one question, with everything that led to it."""

    decision: Decision
    candidates: tuple[Candidate, ...]
    reason: str
    signals: Mapping[str, float]
    normalised: str
    clarify_ids: tuple[str, ...] = ()
    """Entries to offer in "did you mean", one per distinct answer, best first."""

    @property
    def best(self) -> Candidate | None:
        """The best candidate, if any."""
        return self.candidates[0] if self.candidates else None

    def clarify_candidates(self) -> tuple[Candidate, ...]:
        """Candidates for "did you mean" (empty unless the decision is CLARIFY)."""
        if self.decision is not Decision.CLARIFY:
            return ()
        by_id = {c.entry_id: c for c in self.candidates}
        return tuple(by_id[i] for i in self.clarify_ids if i in by_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: decision, reason, signals and candidates."""
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "normalised": self.normalised,
            "signals": _rounded(self.signals),
            "candidates": [c.to_dict() for c in self.candidates],
            "clarify": list(self.clarify_ids) if self.decision is Decision.CLARIFY else [],
        }


class Matcher:
    """Matches questions against a knowledge base; entries can be changed without a rebuild."""

    def __init__(self, kb: KnowledgeBase, config: MatcherConfig | None = None, *, recent: int = 0) -> None:
        """``recent``: how many matches to keep for repeated questions (none by default, so that evaluation
        and benchmarks time the scoring); any change to the entries forgets them all."""
        self._config = config or MatcherConfig()
        self._index = _build(kb)
        self._recent_size = recent
        self._recent: OrderedDict[tuple[str, date], Match] = OrderedDict()

    @property
    def config(self) -> MatcherConfig:
        """The configuration in force."""
        return self._config

    def match(self, text: str, lang: str | None = None, *, today: date | None = None) -> Match:
        """Decide how to answer ``text``; entries not valid on ``today`` (default: today) are skipped.

        ``lang`` is the user's language, if known; both scripts are matched whatever it says.
        """
        normalised = normalise(text) if isinstance(text, str) else ""
        day = today or date.today()
        key = (normalised, day)  # what scoring depends on, besides the entries
        found = self._recent.get(key)
        if found is not None:
            self._recent.move_to_end(key)
            return found
        match = self._score(normalised, day)
        if self._recent_size:
            self._recent[key] = match
            if len(self._recent) > self._recent_size:
                self._recent.popitem(last=False)
        return match

    def _score(self, normalised: str, day: date) -> Match:
        query = self._index.analyse_query(normalised)
        units = float(len(query.units))
        if not query.units:
            return Match(Decision.NONE, (), "empty_question", {"query_units": 0.0}, normalised)
        scored = score_entries(
            self._index, query, self._config.weights, lambda e: e.is_valid_on(day), MAX_CANDIDATES
        )
        return self._decide(scored, units, query.text)

    def upsert(self, entry: Entry) -> None:
        """Add ``entry`` or replace the entry with its id."""
        self._index.add(entry)
        self._recent.clear()

    def remove(self, entry_id: str) -> None:
        """Remove the entry ``entry_id`` (unknown ids are ignored)."""
        self._index.remove(entry_id)
        self._recent.clear()

    def replace_kb(self, kb: KnowledgeBase) -> None:
        """Rebuild from ``kb``; the old index answers until the new one is complete."""
        self._index = _build(kb)
        self._recent.clear()

    def entry(self, entry_id: str) -> Entry | None:
        """The indexed entry ``entry_id``, if any."""
        item = self._index.entries.get(entry_id)
        return item.entry if item else None

    def __len__(self) -> int:
        return len(self._index)

    def _decide(self, scored: list[Scored], units: float, normalised: str) -> Match:
        candidates = tuple(Candidate(s.entry_id, s.score, MappingProxyType(dict(s.signals))) for s in scored)
        if not candidates:
            return Match(Decision.NONE, (), "no_candidates", {"query_units": units}, normalised)
        best_entry = self._index.entries[candidates[0].entry_id].entry
        limits = self._config.thresholds_for(best_entry.category)
        signals = self._decision_signals(candidates, units, limits)
        signals["auto_answer"] = float(self._auto_answer(best_entry))
        decision, reason = verdict(signals, limits)
        if decision is Decision.ANSWER and not signals["auto_answer"]:
            decision, reason = Decision.CLARIFY, "auto_answer_off"
        clarify = self._clarify_ids(candidates, limits) if decision is Decision.CLARIFY else ()
        return Match(decision, candidates, reason, MappingProxyType(signals), normalised, clarify)

    def _decision_signals(
        self, candidates: tuple[Candidate, ...], units: float, limits: Thresholds
    ) -> dict[str, float]:
        best = candidates[0]
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0  # a different answer, always
        thresholds = _threshold_signals(limits)
        return {
            "best": best.score,
            "margin": best.score - runner_up,
            "coverage": best.signals.get("units", 0.0),
            "query_units": units,
            **thresholds,
        }

    def _auto_answer(self, entry: Entry) -> bool:
        category = self._index.categories.get(entry.category)
        return entry.auto_answer and (category is None or category.auto_answer)

    def _clarify_ids(self, candidates: tuple[Candidate, ...], limits: Thresholds) -> tuple[str, ...]:
        keys = {c.entry_id: self._index.entries[c.entry_id].answer_key for c in candidates}
        return clarify_choice(candidates, keys, limits, self._config.max_clarify)


def clarify_choice(
    candidates: Sequence[Candidate], answer_keys: Mapping[str, str], limits: Thresholds, max_clarify: int
) -> tuple[str, ...]:
    """Entries to offer in "did you mean": close enough to the best, one per distinct answer."""
    if not candidates:
        return ()
    floor = max(limits.clarify_score, candidates[0].score * limits.clarify_ratio)
    chosen: list[str] = []
    answers: set[str] = set()
    for candidate in candidates:
        if candidate.score < floor or len(chosen) >= max_clarify:
            break
        key = answer_keys.get(candidate.entry_id, candidate.entry_id)
        if key not in answers:
            answers.add(key)
            chosen.append(candidate.entry_id)
    return tuple(chosen)


def verdict(signals: Mapping[str, float], limits: Thresholds) -> tuple[Decision, str]:
    """ANSWER when every limit is met; else CLARIFY naming the first limit missed, or NONE."""
    if signals["best"] < limits.clarify_score:
        return Decision.NONE, "score_below_clarify"
    checks = (
        (signals["best"] >= limits.answer_score, "score_below_answer"),
        (signals["coverage"] >= limits.answer_coverage, "low_coverage"),
        (signals["margin"] >= limits.answer_margin, "margin_too_small"),
        (signals["query_units"] >= limits.min_units, "question_too_short"),
    )
    failed = next((reason for ok, reason in checks if not ok), None)
    if failed is None:
        return Decision.ANSWER, "confident"
    return Decision.CLARIFY, failed


@lru_cache(maxsize=64)
def _threshold_signals(limits: Thresholds) -> dict[str, float]:
    return {f"threshold_{k}": float(v) for k, v in asdict(limits).items()}


def _build(kb: KnowledgeBase) -> Index:
    index = Index(kb.categories, SynonymMap(kb.synonyms))
    # The index is hundreds of thousands of small objects that all stay alive: collecting
    # garbage while they are made only rescans them (a quarter of the build time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for entry in kb.entries:
            index.add(entry)
        index.prepare_selection()
    finally:
        if collecting:
            gc.enable()
    # Nothing in the index refers back to itself, so it never needs the cycle collector:
    # moved out of its sight, later collections stay fast however large the index is.
    gc.freeze()
    return index


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}
