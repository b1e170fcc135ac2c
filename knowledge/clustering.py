"""Groups unanswered questions into clusters of the same need, so staff see what to write next.

Greedy leader clustering: distinct questions are taken most frequent first; each joins the most similar
existing cluster of its language whose leader it resembles enough, else it leads a new cluster. English
is compared word by word (stems, order ignored), Chinese character by character; languages never mix.
The result depends only on the input, not on its order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from knowledge.normalise import content_runs, guess_language, normalise, stem

DEFAULT_THRESHOLDS: Mapping[str, float] = {"en": 60.0, "zh": 60.0}
"""Least similarity (0–100) to a cluster's leader for a question to join it."""

_QUESTION_WORDS = frozenset(["how", "what", "when", "where", "which", "who", "why", "can", "could", "may"])
"""Kept by the matcher (they separate answers), but they say nothing about which need a question is."""


@dataclass(frozen=True)
class Asked:
    """One unanswered question as the clustering sees it."""

    text: str
    """As the citizen wrote it (in its stored form)."""
    normalised: str = ""
    """The matcher's normalised form; computed from ``text`` when empty."""
    citizen_id: int | None = None
    nearest: str | None = None
    """The entry the matcher found closest, if any."""
    nearest_score: float | None = None


@dataclass
class Cluster:
    """Questions that ask for the same thing, in one language."""

    language: str
    leader: str
    """The similarity key of the question that started the cluster."""
    questions: list[Asked] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def citizens(self) -> int:
        """How many different citizens asked (questions without a citizen count as one each)."""
        known = {q.citizen_id for q in self.questions if q.citizen_id is not None}
        return len(known) + sum(1 for q in self.questions if q.citizen_id is None)

    def examples(self, limit: int = 3) -> list[str]:
        """The most frequent distinct wordings (case and punctuation aside), most frequent first."""
        forms: dict[str, Counter[str]] = {}
        for asked in self.questions:
            forms.setdefault(asked.normalised or normalise(asked.text), Counter())[_tidy(asked.text)] += 1
        ranked = sorted(forms.values(), key=lambda shown: (-shown.total(), min(shown)))
        return [min(shown, key=lambda text: (-shown[text], text)) for shown in ranked[:limit]]

    def nearest(self) -> tuple[str, float] | None:
        """The entry most often found closest by the matcher, with its best score."""
        counts = Counter(q.nearest for q in self.questions if q.nearest)
        if not counts:
            return None
        entry_id = min(counts, key=lambda e: (-counts[e], e))
        best = max((q.nearest_score or 0.0) for q in self.questions if q.nearest == entry_id)
        return entry_id, best


def similarity_key(normalised: str, language: str) -> str:
    """What two questions are compared on: content words (stemmed) or Chinese characters, space-separated.

    Falls back to the whole normalised text when a question has no content words at all.
    """
    parts: list[str] = []
    for cjk, run in content_runs(normalised):
        if cjk:
            parts.extend(run)
        elif run not in _QUESTION_WORDS:
            parts.append(stem(run))
    key = " ".join(parts)
    if not key:
        key = " ".join(normalised) if language == "zh" else normalised
    return key


def cluster_questions(
    questions: Iterable[Asked], thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS
) -> list[Cluster]:
    """Clusters of the same need, largest first; questions with no words at all are left out."""
    by_key: dict[tuple[str, str], list[Asked]] = {}
    for asked in questions:
        normalised = asked.normalised or normalise(asked.text)
        if not any(ch.isalnum() for ch in normalised):
            continue
        language = guess_language(normalised)
        by_key.setdefault((language, similarity_key(normalised, language)), []).append(asked)
    # Most frequent wordings lead; ties broken by the text, so input order never matters.
    ordered = sorted(by_key.items(), key=lambda item: (-len(item[1]), item[0]))
    clusters: list[Cluster] = []
    leaders: dict[str, list[str]] = {}
    owners: dict[str, list[Cluster]] = {}
    for (language, key), members in ordered:
        home = _best_cluster(key, leaders.get(language, []), thresholds.get(language, 60.0))
        if home is None:
            cluster = Cluster(language, key)
            clusters.append(cluster)
            leaders.setdefault(language, []).append(key)
            owners.setdefault(language, []).append(cluster)
        else:
            cluster = owners[language][home]
        cluster.questions.extend(members)
    return sorted(clusters, key=lambda c: (-c.count, -c.citizens, c.language, c.leader))


def _best_cluster(key: str, leaders: list[str], threshold: float) -> int | None:
    """The index of the most similar leader at or above ``threshold`` (the earliest on a tie)."""
    if not leaders:
        return None
    found = process.extractOne(key, leaders, scorer=fuzz.token_set_ratio, score_cutoff=threshold)
    return None if found is None else int(found[2])


def _tidy(text: str) -> str:
    return " ".join(text.split())
