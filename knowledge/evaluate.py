"""Measuring the matcher on labelled questions: ranking quality, decisions and latency."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from knowledge.matcher import Decision, Match, Matcher, Thresholds, clarify_choice, verdict

SHARES = ("answered_correct", "clarify_relevant", "clarify_other", "wrong_answer", "refused")


class CaseFileError(ValueError):
    """A cases file that cannot be read as evaluation cases."""


@dataclass(frozen=True)
class Case:
    """A question and the entries that answer it (none: the knowledge base has no answer)."""

    query: str
    lang: str
    relevant: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        """Whether some entry answers the question."""
        return bool(self.relevant)


@dataclass(frozen=True)
class Outcome:
    """What the matcher did with one case."""

    case: Case
    match: Match
    latency_ms: float


@dataclass(frozen=True)
class Shares:
    """Shares of cases per decision outcome; they add up to 1.

    - ``answered_correct``: answered, and the answer is a relevant entry (0 for no-answer cases);
    - ``clarify_relevant``: "did you mean" offered a relevant entry (0 for no-answer cases);
    - ``clarify_other``: "did you mean" offered no relevant entry (for no-answer cases: any clarify);
    - ``wrong_answer``: answered confidently with an entry that is not relevant
      (for no-answer cases: any confident answer);
    - ``refused``: no answer and no "did you mean" (decision ``none``).

    ``success`` is answered_correct + clarify_relevant for answerable cases and
    1 - wrong_answer for no-answer cases: the share the README's decision accuracy counts.
    """

    answered_correct: float = 0.0
    clarify_relevant: float = 0.0
    clarify_other: float = 0.0
    wrong_answer: float = 0.0
    refused: float = 0.0
    success: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready dict."""
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Report:
    """Metrics over a set of cases, overall and per language."""

    top1: float
    recall_at_3: float
    mrr_at_10: float
    answerable: Shares
    no_answer: Shares
    latency_p50: float
    latency_p99: float
    n_cases: int
    n_answerable: int
    n_entries: int
    by_language: Mapping[str, Report]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the keys ``govbot kb eval --json`` prints."""
        return {
            "top1": round(self.top1, 4),
            "recall_at_3": round(self.recall_at_3, 4),
            "mrr_at_10": round(self.mrr_at_10, 4),
            "answerable": self.answerable.to_dict(),
            "no_answer": self.no_answer.to_dict(),
            "latency_ms": {"p50": round(self.latency_p50, 3), "p99": round(self.latency_p99, 3)},
            "n_cases": self.n_cases,
            "n_answerable": self.n_answerable,
            "n_no_answer": self.n_cases - self.n_answerable,
            "n_entries": self.n_entries,
            "by_language": {lang: r.to_dict() for lang, r in sorted(self.by_language.items())},
        }


def load_cases(path: str | Path) -> list[Case]:
    """Read evaluation cases from a JSON Lines file ``{"query", "lang", "relevant"}``."""
    try:
        # As the knowledge files are read: a BOM is fine, and only "\n" ends a line (str.splitlines()
        # would also split a question at U+2028 or U+0085, which JSON strings may hold as they are).
        lines = Path(path).read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: cannot read: {exc}") from exc
    cases = [_case(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
    if not cases:  # figures of nothing would read as a matcher that answers nothing
        raise CaseFileError(f'{path}: no cases (one JSON object per line: {{"query", "lang", "relevant"}})')
    return cases


def _case(line: str, where: str) -> Case:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CaseFileError(f"{where}: not JSON: {exc.msg}") from exc
    except RecursionError:
        raise CaseFileError(f"{where}: not JSON: nested too deep") from None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        raise CaseFileError(f'{where}: expected an object with a string "query"')
    relevant = data.get("relevant", [])
    if not isinstance(relevant, list) or not all(isinstance(r, str) for r in relevant):
        raise CaseFileError(f'{where}: "relevant" must be a list of entry ids')
    return Case(data["query"], str(data.get("lang") or "und"), tuple(relevant))


def run_cases(
    matcher: Matcher, cases: Iterable[Case], clock: Callable[[], float] = time.perf_counter, *,
    today: date | None = None,
) -> list[Outcome]:
    """Match every case on ``today`` (entries valid that day; default the machine's date), timing each with
    ``clock`` (seconds)."""
    outcomes = []
    for case in cases:
        lang = case.lang if case.lang in ("en", "zh") else None
        start = clock()
        match = matcher.match(case.query, lang, today=today)
        outcomes.append(Outcome(case, match, (clock() - start) * 1000.0))
    return outcomes


def evaluate(
    matcher: Matcher, cases: Sequence[Case], clock: Callable[[], float] = time.perf_counter, *,
    today: date | None = None,
) -> Report:
    """Run ``cases`` through ``matcher`` on ``today`` and report top-1, recall@3, MRR@10, decisions and
    latency."""
    return report(run_cases(matcher, cases, clock, today=today), len(matcher))


def report(outcomes: Sequence[Outcome], n_entries: int) -> Report:
    """Metrics of already matched cases, overall and per language."""
    langs = sorted({o.case.lang for o in outcomes})
    by_language = {
        lang: _report([o for o in outcomes if o.case.lang == lang], n_entries, {}) for lang in langs
    }
    return _report(outcomes, n_entries, by_language)


def _report(outcomes: Sequence[Outcome], n_entries: int, by_language: Mapping[str, Report]) -> Report:
    answerable = [o for o in outcomes if o.case.answerable]
    ranks = [_rank(o) for o in answerable]
    latencies = sorted(o.latency_ms for o in outcomes)
    return Report(
        top1=_mean(r == 1 for r in ranks),
        recall_at_3=_mean(r is not None and r <= 3 for r in ranks),
        mrr_at_10=_mean(1.0 / r if r is not None and r <= 10 else 0.0 for r in ranks),
        answerable=shares([_outcome(o.case, o.match) for o in answerable], answerable=True),
        no_answer=shares(
            [_outcome(o.case, o.match) for o in outcomes if not o.case.answerable], answerable=False
        ),
        latency_p50=percentile(latencies, 50),
        latency_p99=percentile(latencies, 99),
        n_cases=len(outcomes),
        n_answerable=len(answerable),
        n_entries=n_entries,
        by_language=by_language,
    )


def _rank(outcome: Outcome) -> int | None:
    relevant = set(outcome.case.relevant)
    ids = [c.entry_id for c in outcome.match.candidates]
    return next((i for i, entry_id in enumerate(ids, 1) if entry_id in relevant), None)


def _outcome(case: Case, match: Match, clarify_ids: Sequence[str] | None = None) -> str:
    """Which of :data:`SHARES` a decision on ``case`` falls under."""
    return classify(
        case,
        match.decision,
        match.best.entry_id if match.best else None,
        match.clarify_ids if clarify_ids is None else clarify_ids,
    )


def classify(case: Case, decision: Decision, best: str | None, clarify_ids: Sequence[str]) -> str:
    """Which of :data:`SHARES` a decision on ``case`` falls under."""
    relevant = set(case.relevant)
    if decision is Decision.ANSWER:
        return "answered_correct" if best in relevant else "wrong_answer"
    if decision is Decision.CLARIFY:
        return "clarify_relevant" if relevant.intersection(clarify_ids) else "clarify_other"
    return "refused"


def shares(outcomes: Sequence[str], answerable: bool) -> Shares:
    """Shares of outcome names (see :class:`Shares`)."""
    if not outcomes:
        return Shares()
    counts = {name: sum(o == name for o in outcomes) / len(outcomes) for name in SHARES}
    success = (
        counts["answered_correct"] + counts["clarify_relevant"] if answerable else 1 - counts["wrong_answer"]
    )
    return Shares(**counts, success=success)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def _mean(values: Iterable[float | bool]) -> float:
    items = [float(v) for v in values]
    return sum(items) / len(items) if items else 0.0


def render_table(report: Report) -> str:
    """A plain-text table of a report, overall and per language, for people."""
    header = (
        f"{'set':<8}{'cases':>6}{'ans':>5}{'top1':>7}{'R@3':>7}{'MRR':>7}"
        f"{'ok':>7}{'ans✓':>7}{'dym✓':>7}{'wrong':>7}{'| no-ans ok':>12}{'wrong':>7}"
        f"{'p50ms':>8}{'p99ms':>8}"
    )
    rows = [header, "-" * len(header), _row("all", report)]
    rows += [_row(lang, r) for lang, r in sorted(report.by_language.items())]
    rows.append(f"entries: {report.n_entries}   ok = answered correctly or offered in 'did you mean'")
    return "\n".join(rows)


def _row(name: str, r: Report) -> str:
    a, n = r.answerable, r.no_answer
    return (
        f"{name:<8}{r.n_cases:>6}{r.n_answerable:>5}{r.top1:>7.3f}{r.recall_at_3:>7.3f}{r.mrr_at_10:>7.3f}"
        f"{a.success:>7.3f}{a.answered_correct:>7.3f}{a.clarify_relevant:>7.3f}{a.wrong_answer:>7.3f}"
        f"{n.success:>12.3f}{n.wrong_answer:>7.3f}{r.latency_p50:>8.2f}{r.latency_p99:>8.2f}"
    )


# -- calibration ---------------------------------------------------------------------------

CALIBRATION_GRID: Mapping[str, Sequence[float]] = {
    "answer_score": [x / 100 for x in range(30, 101, 5)],
    "answer_coverage": [x / 100 for x in range(40, 101, 5)],
    "answer_margin": [x / 100 for x in range(0, 41, 2)],
    "min_units": [1, 2, 3, 4],
    "clarify_score": [x / 100 for x in range(4, 41, 2)],
    "clarify_ratio": [x / 10 for x in range(3, 10)],
}
"""Values tried for each threshold by :func:`calibrate`."""

TARGETS = {"answerable": 0.85, "no_answer": 0.60}
"""Decision accuracy the calibration must keep: shares of answerable cases answered or offered
correctly, and of no-answer cases not answered confidently."""


def utility(answerable: Shares, no_answer: Shares) -> float:
    """How good a set of decisions is for citizens: a confident wrong answer costs most.

    Falling short of :data:`TARGETS` is penalised heavily, so the calibration meets them when it can.
    """
    value = (
        answerable.answered_correct
        + 0.6 * answerable.clarify_relevant
        - 0.1 * answerable.clarify_other
        - 1.5 * answerable.wrong_answer
        + 0.2 * no_answer.refused
        - 0.1 * no_answer.clarify_other
        - 1.5 * no_answer.wrong_answer
    )
    shortfall = max(0.0, TARGETS["answerable"] - answerable.success) + max(
        0.0, TARGETS["no_answer"] - no_answer.success
    )
    return value - 5.0 * shortfall


def redecide(outcome: Outcome, limits: Thresholds, max_clarify: int = 3) -> str:
    """The outcome name (see :class:`Shares`) of a case had ``limits`` been in force."""
    match = outcome.match
    if not match.candidates:
        return classify(outcome.case, Decision.NONE, None, ())
    signals = {
        **match.signals,
        **{f"threshold_{f.name}": float(getattr(limits, f.name)) for f in fields(limits)},
    }
    decision, _ = verdict(signals, limits)
    # Whatever limit the match missed first, an entry out of automatic answering is only ever offered.
    if decision is Decision.ANSWER and not match.signals.get("auto_answer", 1.0):
        decision = Decision.CLARIFY
    ids = {c.entry_id: c.entry_id for c in match.candidates}
    options = (
        clarify_choice(match.candidates, ids, limits, max_clarify) if decision is Decision.CLARIFY else ()
    )
    return classify(outcome.case, decision, match.candidates[0].entry_id, options)


def score_thresholds(sets: Mapping[str, Sequence[Outcome]], limits: Thresholds) -> float:
    """Mean :func:`utility` over evaluation sets (each set counts once, whatever its size)."""
    values = []
    for outcomes in sets.values():
        answerable = [redecide(o, limits) for o in outcomes if o.case.answerable]
        no_answer = [redecide(o, limits) for o in outcomes if not o.case.answerable]
        values.append(utility(shares(answerable, True), shares(no_answer, False)))
    return sum(values) / len(values) if values else 0.0


def calibrate(
    sets: Mapping[str, Sequence[Outcome]],
    start: Thresholds | None = None,
    grid: Mapping[str, Sequence[float]] = CALIBRATION_GRID,
    rounds: int = 3,
) -> Thresholds:
    """Thresholds that maximise :func:`score_thresholds` on matched cases, one threshold at a time.

    Matching does not depend on thresholds, so each set is matched once and only the
    decisions are re-made. Ties keep the stricter (higher) value.
    """
    best = start or Thresholds()
    best_value = score_thresholds(sets, best)
    for _ in range(rounds):
        improved = False
        for name, values in grid.items():
            for value in sorted(values, reverse=True):  # on a tie the stricter value stays
                candidate = replace(best, **{name: type(getattr(best, name))(value)})
                score = score_thresholds(sets, candidate)
                if score > best_value + 1e-12:
                    best, best_value, improved = candidate, score, True
        if not improved:
            break
    return best
