"""Evaluation of the matcher: case files, metrics, decision shares, latency and calibration."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from knowledge.entry import Entry, KnowledgeBase
from knowledge.evaluate import (
    Case,
    CaseFileError,
    Outcome,
    calibrate,
    classify,
    evaluate,
    load_cases,
    percentile,
    redecide,
    render_table,
    run_cases,
    score_thresholds,
)
from knowledge.matcher import Decision, Matcher, MatcherConfig, Thresholds


def entry(entry_id: str, question: str, answer: str, lang: str = "en") -> Entry:
    return Entry(id=entry_id, question={lang: question}, answer={lang: answer})


@pytest.fixture
def kb() -> KnowledgeBase:
    return KnowledgeBase(
        entries=[
            entry("passport", "How do I apply for a passport?", "At the exit-entry office."),
            entry("vote", "How do I register to vote?", "Online, before the deadline."),
            entry("bike", "Where can I park my bicycle?", "At any public rack."),
            entry("shebao", "社保卡丢了怎么补办？", "到社保服务中心补办。", "zh"),
        ]
    )


@pytest.fixture
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb)


def ticking_clock(step: float = 0.001) -> Callable[[], float]:
    """A clock that advances ``step`` seconds each time it is read."""
    ticks: Iterator[float] = (i * step for i in range(10**9))
    return lambda: next(ticks)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- case files ---------------------------------------------------------------------------------


def test_load_cases_reads_json_lines(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "cases.jsonl",
        [
            json.dumps({"query": "passport?", "lang": "en", "relevant": ["passport"]}),
            "",
            json.dumps({"query": "没有答案", "lang": "zh", "relevant": []}),
            json.dumps({"query": "no language"}),
        ],
    )
    cases = load_cases(path)
    assert cases == [
        Case("passport?", "en", ("passport",)),
        Case("没有答案", "zh", ()),
        Case("no language", "und", ()),
    ]
    assert cases[0].answerable
    assert not cases[1].answerable


def test_load_cases_reads_what_the_knowledge_files_read(tmp_path: Path) -> None:
    """A BOM (Notepad, Excel) and line separators inside a question, as JSON Lines allows them."""
    path = tmp_path / "cases.jsonl"
    lines = [{"query": "passport\u2028renewal", "relevant": ["passport"]}, {"query": "tax\x85rate"}]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8-sig")
    assert [case.query for case in load_cases(path)] == ["passport\u2028renewal", "tax\x85rate"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON: nested too deep"),
        ('["a list"]', 'string "query"'),
        ('{"query": 5}', 'string "query"'),
        ('{"query": "q", "relevant": "so-1"}', "list of entry ids"),
        ('{"query": "q", "relevant": [1]}', "list of entry ids"),
    ],
)
def test_load_cases_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps({"query": "fine"}), line])
    with pytest.raises(CaseFileError, match=message) as raised:
        load_cases(path)
    assert "bad.jsonl:2" in str(raised.value)


def test_load_cases_reports_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match="cannot read"):
        load_cases(tmp_path / "missing.jsonl")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CaseFileError, match="cannot read"):
        load_cases(binary)


# -- metrics ----------------------------------------------------------------------------------


def test_ranking_metrics_count_answerable_cases_only(matcher: Matcher) -> None:
    cases = [
        Case("How do I apply for a passport?", "en", ("passport",)),  # rank 1
        Case("How do I register to vote?", "en", ("bike",)),  # relevant entry ranked lower or not at all
        Case("what is the weather on mars", "en", ()),  # no-answer: not in the ranking metrics
    ]
    report = evaluate(matcher, cases, clock=ticking_clock())
    outcomes = run_cases(matcher, cases[1:2])
    ids = [c.entry_id for c in outcomes[0].match.candidates]
    rank = ids.index("bike") + 1 if "bike" in ids else None
    assert report.top1 == 0.5
    assert report.recall_at_3 == (1.0 if rank is not None and rank <= 3 else 0.5)
    assert report.mrr_at_10 == pytest.approx((1.0 + (1.0 / rank if rank else 0.0)) / 2)
    assert report.n_cases == 3
    assert report.n_answerable == 2
    assert report.n_entries == 4


def test_decision_shares_follow_their_definitions() -> None:
    answerable = Case("q", "en", ("a", "b"))
    no_answer = Case("q", "en", ())
    assert classify(answerable, Decision.ANSWER, "b", ()) == "answered_correct"
    assert classify(answerable, Decision.ANSWER, "c", ()) == "wrong_answer"
    assert classify(answerable, Decision.CLARIFY, "c", ("c", "a")) == "clarify_relevant"
    assert classify(answerable, Decision.CLARIFY, "c", ("c", "d")) == "clarify_other"
    assert classify(answerable, Decision.NONE, "a", ()) == "refused"
    assert classify(no_answer, Decision.ANSWER, "a", ()) == "wrong_answer"
    assert classify(no_answer, Decision.CLARIFY, "a", ("a",)) == "clarify_other"
    assert classify(no_answer, Decision.NONE, None, ()) == "refused"


def test_report_splits_answerable_and_no_answer_decisions(matcher: Matcher) -> None:
    cases = [
        Case("How do I apply for a passport?", "en", ("passport",)),  # answered correctly
        Case("How do I apply for a passport?", "en", ("vote",)),  # answered wrongly
        Case("Where can I park my bicycle?", "en", ()),  # no-answer case answered
        Case("what is the weather on mars", "en", ()),  # no-answer case refused
    ]
    report = evaluate(matcher, cases, clock=ticking_clock())
    assert report.answerable.answered_correct == 0.5
    assert report.answerable.wrong_answer == 0.5
    assert report.answerable.success == 0.5
    assert report.no_answer.answered_correct == 0.0
    assert report.no_answer.wrong_answer == 0.5
    assert report.no_answer.refused == 0.5
    assert report.no_answer.success == 0.5
    for shares in (report.answerable, report.no_answer):
        total = shares.answered_correct + shares.clarify_relevant + shares.clarify_other
        assert total + shares.wrong_answer + shares.refused == pytest.approx(1.0)


def test_latency_comes_from_the_clock(matcher: Matcher) -> None:
    cases = [Case("passport", "en", ("passport",))] * 10
    report = evaluate(matcher, cases, clock=ticking_clock(0.002))
    assert report.latency_p50 == pytest.approx(2.0)
    assert report.latency_p99 == pytest.approx(2.0)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0
    assert percentile([7.0], 1) == 7.0


def test_report_has_the_keys_the_cli_prints(matcher: Matcher) -> None:
    cases = [
        Case("How do I apply for a passport?", "en", ("passport",)),
        Case("社保卡丢了", "zh", ("shebao",)),
        Case("天气怎么样", "zh", ()),
    ]
    data = evaluate(matcher, cases, clock=ticking_clock()).to_dict()
    assert json.loads(json.dumps(data)) == data
    shape = {
        "top1",
        "recall_at_3",
        "mrr_at_10",
        "answerable",
        "no_answer",
        "latency_ms",
        "n_cases",
        "n_entries",
    }
    assert shape <= set(data)
    assert set(data["by_language"]) == {"en", "zh"}
    for part in (data, data["by_language"]["en"], data["by_language"]["zh"]):
        assert shape <= set(part)
        for key in ("answerable", "no_answer"):
            assert {"answered_correct", "clarify_relevant", "wrong_answer", "refused"} <= set(part[key])
        assert set(part["latency_ms"]) == {"p50", "p99"}
    assert data["by_language"]["zh"]["n_cases"] == 2
    assert data["by_language"]["zh"]["top1"] == 1.0


def test_an_empty_case_list_gives_zeros(matcher: Matcher) -> None:
    report = evaluate(matcher, [])
    assert report.top1 == 0.0
    assert report.n_cases == 0
    assert report.latency_p99 == 0.0
    assert report.by_language == {}


def test_render_table_has_a_row_per_language(matcher: Matcher) -> None:
    cases = [Case("passport", "en", ("passport",)), Case("社保卡丢了", "zh", ("shebao",))]
    table = render_table(evaluate(matcher, cases, clock=ticking_clock()))
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["set", "cases", "ans", "top1"]
    assert [line.split()[0] for line in lines[2:5]] == ["all", "en", "zh"]
    assert "entries: 4" in table


# -- calibration --------------------------------------------------------------------------------


def outcomes_for(matcher: Matcher, cases: list[Case]) -> list[Outcome]:
    return run_cases(matcher, cases, clock=ticking_clock())


def test_redecide_agrees_with_the_matcher(kb: KnowledgeBase, matcher: Matcher) -> None:
    cases = [
        Case("How do I apply for a passport?", "en", ("passport",)),
        Case("register vote passport bicycle", "en", ("vote",)),
        Case("what is the weather on mars", "en", ()),
    ]
    outcomes = outcomes_for(matcher, cases)
    for limits in (
        Thresholds(),
        Thresholds(answer_score=0.2, answer_coverage=0.3),
        Thresholds(clarify_score=0.9),
    ):
        configured = Matcher(kb, MatcherConfig(thresholds=limits))
        for outcome in outcomes:
            expected = configured.match(outcome.case.query)
            best = expected.best.entry_id if expected.best else None
            assert redecide(outcome, limits) == classify(
                outcome.case, expected.decision, best, expected.clarify_ids
            )


def test_redecide_keeps_an_entry_out_of_automatic_answering_under_any_thresholds(kb: KnowledgeBase) -> None:
    kb.entries = [e.replace(auto_answer=False) if e.id == "vote" else e for e in kb.entries]
    case = Case("register vote passport bicycle", "en", ("vote",))
    (outcome,) = outcomes_for(Matcher(kb), [case])
    assert outcome.match.decision is Decision.CLARIFY
    assert outcome.match.reason != "auto_answer_off"  # a limit other than the switch was missed first
    loose = Thresholds(answer_score=0.1, answer_margin=0.0, answer_coverage=0.1, min_units=1)
    assert Matcher(kb, MatcherConfig(thresholds=loose)).match(case.query).reason == "auto_answer_off"
    assert redecide(outcome, loose) == "clarify_relevant"


def test_calibration_stops_confident_wrong_answers(matcher: Matcher) -> None:
    # Every question is one the matcher answers confidently, and half the answers are wrong.
    cases = [
        Case("How do I apply for a passport?", "en", ("passport",)),
        Case("How do I register to vote?", "en", ()),
        Case("Where can I park my bicycle?", "en", ("bike",)),
        Case("社保卡丢了怎么补办？", "zh", ()),
    ]
    sets = {"all": outcomes_for(matcher, cases)}
    loose = Thresholds(answer_score=0.1, answer_margin=0.0, answer_coverage=0.1, min_units=1)
    calibrated = calibrate(sets, start=loose)
    assert score_thresholds(sets, calibrated) > score_thresholds(sets, loose)
    decided = [redecide(o, calibrated) for o in sets["all"]]
    assert "wrong_answer" not in decided


def test_calibration_keeps_thresholds_that_cannot_be_improved(matcher: Matcher) -> None:
    sets = {"all": outcomes_for(matcher, [Case("How do I apply for a passport?", "en", ("passport",))])}
    start = Thresholds()
    assert calibrate(sets, start=start, grid={"answer_score": [start.answer_score]}) == start
