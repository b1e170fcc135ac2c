"""The matcher: ranking, decisions and their explanations, live updates, bad input, real data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.entry import Category, Entry, KnowledgeBase
from knowledge.evaluate import Report, evaluate, load_cases
from knowledge.formats import load_paths
from knowledge.index import Index
from knowledge.matcher import RECENT_MATCHES, Decision, Match, Matcher, MatcherConfig, Thresholds
from knowledge.normalise import SynonymMap
from knowledge.scoring import SIGNALS

EVAL = Path(__file__).parents[2].parent / "shared" / "eval"
SAMPLE = Path(__file__).parents[2] / "knowledge" / "sample"
SAMPLE_QUESTIONS = Path(__file__).parent / "data" / "sample_questions.jsonl"


def entry(
    entry_id: str, question: str, answer: str, category: str = "", lang: str = "en", **kw: object
) -> Entry:
    return Entry(id=entry_id, category=category, question={lang: question}, answer={lang: answer}, **kw)  # type: ignore[arg-type]


@pytest.fixture
def kb() -> KnowledgeBase:
    return KnowledgeBase(
        entries=[
            entry(
                "id-renew",
                "How do I renew my identity card?",
                "Go to any police station with the old card.",
                "id",
            ),
            entry(
                "id-lost",
                "I lost my identity card, how do I replace it?",
                "Report the loss, then apply again.",
                "id",
            ),
            entry("passport", "How do I apply for a passport?", "Apply at the exit-entry office.", "travel"),
            entry(
                "tax-refund", "How do I get a tax refund?", "File the annual return in the tax app.", "tax"
            ),
            entry(
                "tax-refund-2", "Can I claim a tax refund?", "File the annual return in the tax app.", "tax"
            ),
            entry("tax-deadline", "When is the tax return deadline?", "The deadline is 30 June.", "tax"),
            entry("shebao-lost", "社会保险卡丢了怎么补办？", "带身份证到社保服务中心补办。", "social", "zh"),
            entry("shebao-activate", "新领的社会保险卡怎么激活？", "到银行网点激活。", "social", "zh"),
            entry("id-lost-zh", "身份证丢失了怎么补办？", "到派出所户籍窗口补领。", "id", "zh"),
        ],
        categories=[Category("id"), Category("travel"), Category("tax"), Category("social")],
        synonyms=[["identity card", "ID card"], ["社会保险", "社保"]],
    )


@pytest.fixture(params=[0, RECENT_MATCHES], ids=["scoring", "serving"])
def matcher(kb: KnowledgeBase, request: pytest.FixtureRequest) -> Matcher:
    """Every behaviour holds alike for a matcher that keeps recent matches (as the bot's does)."""
    return Matcher(kb, recent=request.param)


# -- ranking ----------------------------------------------------------------------------------


def test_the_exact_question_is_answered(matcher: Matcher) -> None:
    match = matcher.match("How do I apply for a passport?")
    assert match.decision is Decision.ANSWER
    assert match.reason == "confident"
    assert match.best is not None
    assert match.best.entry_id == "passport"


def test_synonyms_apply_to_questions_and_entries(matcher: Matcher) -> None:
    match = matcher.match("how to renew my ID card")
    assert match.best is not None
    assert match.best.entry_id == "id-renew"
    assert "identity card" in match.normalised
    zh = matcher.match("社保卡丢了")
    assert zh.best is not None
    assert zh.best.entry_id == "shebao-lost"


def test_synonyms_apply_to_plurals_in_questions_and_entries() -> None:
    kb = KnowledgeBase(
        entries=[entry("id-renew", "How do I renew identity cards?", "At any police station.", "id"),
                 entry("passport", "How do I apply for a passport?", "At the exit-entry office.", "travel")],
        synonyms=[["ID card", "identity card"]],
    )
    match = Matcher(kb).match("renewing ID cards")
    assert match.best is not None
    assert match.best.entry_id == "id-renew"
    assert match.normalised == "renewing id card"


def test_traditional_characters_and_full_width_text_match(matcher: Matcher) -> None:
    match = matcher.match("社會保險卡丟了怎麼補辦？")
    assert match.best is not None
    assert match.best.entry_id == "shebao-lost"
    assert match.decision is Decision.ANSWER


def test_a_misspelt_word_is_corrected_from_the_vocabulary(matcher: Matcher) -> None:
    match = matcher.match("apply for a pasport")
    assert match.best is not None
    assert match.best.entry_id == "passport"
    assert "passport" in match.normalised


def test_a_word_two_edits_from_a_known_one_is_left_as_it_is(matcher: Matcher) -> None:
    """"passpotz" is two changes from "passport" (r→t, t→z), not a swap of neighbours: another word."""
    assert "passport" not in matcher.match("apply for a passpotz").normalised
    assert "passport" in matcher.match("apply for a passprot").normalised  # a swap is one typo


def test_pinyin_and_homophones_find_the_chinese_words(matcher: Matcher) -> None:
    pinyin = matcher.match("shebao卡丢了")
    assert pinyin.best is not None
    assert pinyin.best.entry_id == "shebao-lost"
    homophone = matcher.match("身份正丢了")  # 正 sounds like 证
    assert homophone.best is not None
    assert homophone.best.entry_id == "id-lost-zh"


def test_entries_with_the_same_answer_are_one_candidate(matcher: Matcher) -> None:
    match = matcher.match("how do I get a tax refund")
    ids = [c.entry_id for c in match.candidates]
    assert ids[0] == "tax-refund"
    assert "tax-refund-2" not in ids
    assert match.decision is Decision.ANSWER  # no margin lost to its own duplicate


def test_english_and_chinese_questions_find_their_own_entries(matcher: Matcher) -> None:
    english = matcher.match("lost identity card replacement")
    chinese = matcher.match("身份证丢了怎么办")
    assert english.best is not None
    assert english.best.entry_id == "id-lost"
    assert chinese.best is not None
    assert chinese.best.entry_id == "id-lost-zh"


# -- decisions ----------------------------------------------------------------------------------


def test_a_close_call_asks_did_you_mean(matcher: Matcher) -> None:
    match = matcher.match("identity card")
    assert match.decision is Decision.CLARIFY
    options = [c.entry_id for c in match.clarify_candidates()]
    assert {"id-renew", "id-lost"} <= set(options)
    assert len(options) <= 3


def test_an_unrelated_question_gets_no_answer(matcher: Matcher) -> None:
    match = matcher.match("what is the weather on mars")
    assert match.decision is Decision.NONE
    assert match.clarify_candidates() == ()


def test_clarify_offers_at_most_max_clarify_distinct_answers(kb: KnowledgeBase) -> None:
    match = Matcher(kb, MatcherConfig(max_clarify=1)).match("tax")
    assert match.decision is Decision.CLARIFY
    assert len(match.clarify_candidates()) == 1


def test_the_decision_explains_itself(matcher: Matcher) -> None:
    match = matcher.match("How do I apply for a passport?")
    for key in (
        "best",
        "margin",
        "coverage",
        "query_units",
        "threshold_answer_score",
        "threshold_clarify_score",
    ):
        assert key in match.signals
    assert match.signals["best"] == match.candidates[0].score
    assert match.signals["margin"] == pytest.approx(match.candidates[0].score - match.candidates[1].score)
    assert set(SIGNALS) <= set(match.candidates[0].signals)
    data = match.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["decision"] == "answer"
    assert data["candidates"][0]["entry_id"] == "passport"
    assert set(data) >= {"decision", "reason", "signals", "candidates", "normalised", "clarify"}


def test_each_missed_limit_has_its_own_reason(kb: KnowledgeBase) -> None:
    question = "How do I apply for a passport?"
    reasons = {
        "score_below_answer": Thresholds(answer_score=5.0),
        "low_coverage": Thresholds(answer_coverage=1.1),
        "margin_too_small": Thresholds(answer_margin=5.0),
        "question_too_short": Thresholds(min_units=20),
        "score_below_clarify": Thresholds(clarify_score=5.0),
    }
    for reason, limits in reasons.items():
        match = Matcher(kb, MatcherConfig(thresholds=limits)).match(question)
        assert match.reason == reason
        assert match.decision is (Decision.NONE if reason == "score_below_clarify" else Decision.CLARIFY)


def test_category_thresholds_override_the_global_ones(kb: KnowledgeBase) -> None:
    strict = MatcherConfig(category_thresholds={"travel": Thresholds(answer_score=5.0)})
    matcher = Matcher(kb, strict)
    travel = matcher.match("How do I apply for a passport?")
    assert travel.decision is Decision.CLARIFY
    assert travel.signals["threshold_answer_score"] == 5.0
    tax = matcher.match("When is the tax return deadline?")
    assert tax.decision is Decision.ANSWER


def test_an_entry_out_of_automatic_answering_is_only_offered(kb: KnowledgeBase) -> None:
    kb.entries = [e.replace(auto_answer=False) if e.id == "passport" else e for e in kb.entries]
    matcher = Matcher(kb)
    match = matcher.match("How do I apply for a passport?")
    assert match.decision is Decision.CLARIFY
    assert match.reason == "auto_answer_off"
    assert match.signals["auto_answer"] == 0.0
    assert next(c.entry_id for c in match.clarify_candidates()) == "passport"
    assert matcher.match("what is the weather on mars").decision is Decision.NONE


def test_a_category_out_of_automatic_answering_is_only_offered(kb: KnowledgeBase) -> None:
    kb.categories = [Category("tax", auto_answer=False), *[c for c in kb.categories if c.code != "tax"]]
    matcher = Matcher(kb)
    assert matcher.match("When is the tax return deadline?").reason == "auto_answer_off"
    assert matcher.match("How do I apply for a passport?").decision is Decision.ANSWER


@pytest.mark.parametrize("recent", [0, RECENT_MATCHES])
def test_entries_not_valid_on_the_day_are_skipped(kb: KnowledgeBase, recent: int) -> None:
    kb.entries = [
        e.replace(valid_until=date(2026, 6, 30)) if e.id == "tax-deadline" else e for e in kb.entries
    ]
    matcher = Matcher(kb, recent=recent)
    before = matcher.match("When is the tax return deadline?", today=date(2026, 6, 1))
    after = matcher.match("When is the tax return deadline?", today=date(2026, 7, 1))
    assert before.best is not None
    assert before.best.entry_id == "tax-deadline"
    assert "tax-deadline" not in [c.entry_id for c in after.candidates]


def test_a_serving_matcher_scores_a_repeated_question_once(kb: KnowledgeBase) -> None:
    matcher = Matcher(kb, recent=2)
    first = matcher.match("How do I apply for a passport?")
    assert matcher.match("how do I apply for a passport？") is first  # the same once normalised
    matcher.match("How do I get a tax refund?")
    matcher.match("When is the tax return deadline?")
    assert matcher.match("How do I apply for a passport?") is not first  # the least recent went
    scoring = Matcher(kb)  # evaluation and benchmarks: every question scored
    question = "How do I apply for a passport?"
    assert scoring.match(question) is not scoring.match(question)


# -- live updates -------------------------------------------------------------------------------


def test_upsert_adds_an_entry_without_a_rebuild(matcher: Matcher) -> None:
    assert matcher.match("Where can I park my bicycle?").decision is Decision.NONE
    matcher.upsert(entry("bike", "Where can I park my bicycle?", "At any public bike rack.", "transport"))
    match = matcher.match("Where can I park my bicycle?")
    assert match.decision is Decision.ANSWER
    assert match.best is not None
    assert match.best.entry_id == "bike"
    assert len(matcher) == 10


def test_upsert_replaces_an_entry_with_the_same_id(matcher: Matcher) -> None:
    matcher.upsert(
        entry("passport", "How do I renew my fishing licence?", "At the harbour office.", "travel")
    )
    assert len(matcher) == 9
    renewed = matcher.entry("passport")
    assert renewed is not None
    assert renewed.answer["en"] == "At the harbour office."
    match = matcher.match("How do I apply for a passport?")
    assert match.decision is not Decision.ANSWER
    assert matcher.match("renew fishing licence").best.entry_id == "passport"  # type: ignore[union-attr]


def test_remove_takes_an_entry_out_of_matching(matcher: Matcher) -> None:
    matcher.remove("passport")
    assert matcher.entry("passport") is None
    assert len(matcher) == 8
    assert "passport" not in [c.entry_id for c in matcher.match("apply for a passport").candidates]
    matcher.remove("passport")  # unknown ids are ignored
    matcher.remove("no-such-entry")


def test_words_the_knowledge_base_lacks_are_not_remembered(kb: KnowledgeBase) -> None:
    """A running bot reads endless new words (names, typos): its memory must not grow with them."""
    index = Index(kb.categories, SynonymMap(kb.synonyms))
    for item in kb.entries:
        index.add(item)
    known = index.idf("passport", "term")
    remembered = len(index._idf_cache)
    unknown = [index.idf(f"zzq{n}word", "term") for n in range(500)]
    assert len(index._idf_cache) == remembered
    assert len(set(unknown)) == 1
    assert unknown[0] > known  # an unknown word still weighs the most


def test_removing_one_duplicate_keeps_the_other_answering(matcher: Matcher) -> None:
    matcher.remove("tax-refund")
    match = matcher.match("how do I get a tax refund")
    assert match.best is not None
    assert match.best.entry_id == "tax-refund-2"


def test_upsert_then_remove_leaves_the_index_as_before(kb: KnowledgeBase, matcher: Matcher) -> None:
    question = "身份证丢了怎么办"
    before = matcher.match(question)
    matcher.upsert(entry("extra", "身份证丢了怎么挂失", "先挂失再补办。", "id", "zh"))
    matcher.remove("extra")
    after = matcher.match(question)
    assert [(c.entry_id, c.score) for c in after.candidates] == [
        (c.entry_id, c.score) for c in before.candidates
    ]
    assert after.decision is before.decision


def test_replace_kb_rebuilds_everything(matcher: Matcher) -> None:
    matcher.replace_kb(KnowledgeBase(entries=[entry("only", "How do I vote?", "At your polling station.")]))
    assert len(matcher) == 1
    assert matcher.entry("passport") is None
    assert matcher.match("how do I vote").best.entry_id == "only"  # type: ignore[union-attr]


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    ["", "   \t\n ", "😀🎉👍", "\x00\x01\x02", "\ud800", "???!!!", "的了吗", None, 12345],
)
def test_questions_without_content_get_no_answer(matcher: Matcher, question: object) -> None:
    match = matcher.match(question)  # type: ignore[arg-type]
    assert match.decision is Decision.NONE
    assert match.reason == "empty_question"
    assert match.candidates == ()


def test_a_ten_thousand_character_question_is_handled(matcher: Matcher) -> None:
    match = matcher.match("passport " * 1250)
    assert match.decision in (Decision.ANSWER, Decision.CLARIFY)
    assert len(match.normalised) <= 1000


def test_control_characters_and_surrogates_inside_a_question_are_ignored(matcher: Matcher) -> None:
    match = matcher.match("How do I\x00 apply for a pass\u200bport?\ud800")
    assert match.best is not None
    assert match.best.entry_id == "passport"


def test_an_empty_knowledge_base_answers_nothing() -> None:
    match = Matcher(KnowledgeBase()).match("How do I apply for a passport?")
    assert match.decision is Decision.NONE
    assert match.reason == "no_candidates"
    assert len(Matcher(KnowledgeBase())) == 0


def test_a_knowledge_base_of_one_entry_works() -> None:
    matcher = Matcher(KnowledgeBase(entries=[entry("one", "How do I register to vote?", "Online.")]))
    assert matcher.match("How do I register to vote?").decision is Decision.ANSWER
    assert matcher.match("vote").reason == "question_too_short"
    assert matcher.match("where is the zoo").decision is Decision.NONE


def test_entries_with_empty_or_odd_texts_are_indexed_safely() -> None:
    odd = [
        Entry(id="empty"),
        Entry(id="blank", question={"en": "   "}, answer={"en": ""}),
        Entry(id="emoji", question={"en": "😀"}, alternatives={"en": ["", "🎉"]}),
        entry("real", "How do I vote?", "At your polling station."),
    ]
    matcher = Matcher(KnowledgeBase(entries=odd))
    assert len(matcher) == 4
    assert matcher.match("how do I vote").best.entry_id == "real"  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_matching_never_raises(question: str) -> None:
    match = _shared_matcher().match(question)
    assert isinstance(match, Match)
    assert len(match.candidates) <= 10
    if match.decision is not Decision.NONE:
        assert match.candidates


_MATCHERS: dict[str, Matcher] = {}


def _shared_matcher() -> Matcher:
    if "sample" not in _MATCHERS:
        _MATCHERS["sample"] = Matcher(load_paths([SAMPLE]))
    return _MATCHERS["sample"]


# -- real data: quality regression guards --------------------------------------------------------


def _eval_entries(path: Path) -> list[Entry]:
    return list(load_paths([path]).entries)


@pytest.fixture(scope="module")
def english() -> Report:
    return evaluate(
        Matcher(KnowledgeBase(entries=_eval_entries(EVAL / "kb.jsonl"))), load_cases(EVAL / "dev.jsonl")
    )


@pytest.fixture(scope="module")
def english_with_distractors() -> Report:
    entries = _eval_entries(EVAL / "kb.jsonl") + _eval_entries(EVAL / "distractors.jsonl")
    return evaluate(Matcher(KnowledgeBase(entries=entries)), load_cases(EVAL / "dev.jsonl"))


@pytest.fixture(scope="module")
def chinese() -> Report:
    kb = KnowledgeBase(entries=_eval_entries(EVAL / "zh" / "kb.jsonl"))
    return evaluate(Matcher(kb), load_cases(EVAL / "zh" / "dev.jsonl"))


def test_chinese_dev_set_meets_its_targets(chinese: Report) -> None:
    assert chinese.top1 >= 0.88
    assert chinese.recall_at_3 >= 0.97
    assert chinese.no_answer.success >= 0.60
    assert chinese.answerable.success >= 0.85
    assert chinese.answerable.wrong_answer <= 0.02


def test_english_dev_set_beats_the_simple_scorers(english: Report) -> None:
    # BM25 over the questions: top-1 0.52, recall@3 0.70, MRR@10 0.61 (shared/eval/README.md).
    assert english.top1 >= 0.55
    assert english.recall_at_3 >= 0.85
    assert english.mrr_at_10 >= 0.65
    assert english.no_answer.success >= 0.60
    assert english.answerable.wrong_answer == 0.0


def test_english_dev_set_meets_the_project_targets(english: Report) -> None:
    assert english.top1 >= 0.70
    assert english.recall_at_3 >= 0.90
    assert english.answerable.success >= 0.85


@pytest.mark.xfail(
    strict=True, reason="near-copies among the distractors take top-1 from 0.78 to 0.57 (PERFORMANCE.md)"
)
def test_distractors_cost_at_most_five_points_of_top1(
    english: Report, english_with_distractors: Report
) -> None:
    assert english.top1 - english_with_distractors.top1 <= 0.05


def test_distractors_cost_at_most_five_points_of_recall_and_no_decision_target(
    english: Report, english_with_distractors: Report
) -> None:
    assert english.recall_at_3 - english_with_distractors.recall_at_3 <= 0.05
    assert english_with_distractors.answerable.success >= 0.85
    assert english_with_distractors.no_answer.success >= 0.60
    assert english_with_distractors.answerable.wrong_answer == 0.0


def test_a_short_phrasing_a_long_question_covers_whole_is_a_candidate_among_many_sharing_more_words() -> None:
    slow = [
        entry(f"slow-{n}", f"Why is the w{n} permit renewal for children taking so long?", f"Answer {n}.")
        for n in range(80)
    ]
    forms = [entry(f"form-{n}", f"Which w{100 + n} form do children need?", f"Form {n}.") for n in range(60)]
    short = entry("short", "Permit renewal for children", "Yes, with a parent.")
    matcher = Matcher(KnowledgeBase(entries=[*slow, *forms, short]))
    match = matcher.match("Why is renewing a permit for my children taking so long? Do they renew it alone?")
    assert match.candidates[0].entry_id == "short"


def test_selection_weights_survive_small_changes_and_are_renewed_after_a_large_import() -> None:
    index = Index()
    for n in range(20):
        index.add(entry(f"e{n}", f"How do I renew permit number w{n}?", f"Answer {n}."))
    index.prepare_selection()
    first = index.entries["e0"].docs[0]
    kept = index.selection_inverse(first)
    index.add(entry("one-more", "Where do I pay the w99 fee?", "At the counter."))
    assert index.selection_inverse(first) == kept  # one entry moves the IDF a little: not worth a recount
    for n in range(200):  # an import into a running bot arrives entry by entry
        index.add(entry(f"new{n}", f"When is the permit office open on day {n}?", f"Hours {n}."))
    assert index.selection_inverse(first) == pytest.approx(1 / index.doc_weight(first))
    assert index.selection_inverse(first) != pytest.approx(kept)


def test_an_entry_without_a_language_tag_yields_to_an_equal_tagged_one() -> None:
    tagged = entry("tagged", "How do I renew a parking permit?", "Renew it online.")
    untagged = entry("untagged", "How do I renew a parking permit?", "Renew it at the office.", lang="und")
    for order in ([tagged, untagged], [untagged, tagged]):
        match = Matcher(KnowledgeBase(entries=order)).match("how do I renew a parking permit")
        assert [c.entry_id for c in match.candidates] == ["tagged", "untagged"]
        assert match.candidates[1].score < match.candidates[0].score


def test_each_candidate_score_is_its_weighted_signals_times_its_trust() -> None:
    tagged = entry("tagged", "How do I renew a parking permit?", "Renew it online.")
    untagged = entry("untagged", "How do I renew a parking permit?", "Renew it at the office.", lang="und")
    matcher = Matcher(KnowledgeBase(entries=[tagged, untagged]))
    weights = matcher.config.weights
    for candidate in matcher.match("how do I renew a parking permit").candidates:
        weighted = sum(getattr(weights, name) * candidate.signals[name] for name in SIGNALS)
        assert candidate.score == pytest.approx(weighted * candidate.signals["trust"])
    assert [c.signals["trust"] for c in matcher.match("renew parking permit").candidates] == [1.0, 0.85]


def test_everyday_paraphrases_find_the_entry() -> None:
    kb = KnowledgeBase(
        entries=[
            entry("kids", "Can children be vaccinated?", "Trials for children are under way."),
            entry("doses", "How many doses do adults need?", "Two doses, four weeks apart."),
        ]
    )
    assert Matcher(kb).match("are kids allowed to get the vaccine").candidates[0].entry_id == "kids"


@pytest.fixture(scope="module")
def sample_matcher() -> Matcher:
    return Matcher(load_paths([SAMPLE]))


def test_sample_knowledge_base_answers_its_held_out_questions(sample_matcher: Matcher) -> None:
    report = evaluate(sample_matcher, load_cases(SAMPLE_QUESTIONS))
    assert report.by_language["zh"].top1 >= 0.85
    assert report.by_language["zh"].recall_at_3 >= 0.95
    assert report.by_language["en"].top1 >= 0.65
    assert report.by_language["en"].recall_at_3 >= 0.85
    assert report.no_answer.success >= 0.9
    assert report.answerable.wrong_answer == 0.0


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("驾照快过期了怎么换", "driving-licence-renew"),
        ("駕駛證丟了", "driving-licence-replace-lost"),
        ("公积金还能取出来交房租吗", "housing-fund-withdraw-rent"),
        ("我想查一下公积金里有多少钱", "housing-fund-balance"),
        ("shebao卡坏了怎么换", "social-security-card-replace"),
        ("ETC在哪装", "driving-etc-toll-tag"),
        ("家里老人想免费坐地铁", "public-transport-senior-travel"),
        ("个税退税到哪一步了", "tax-refund-status"),
        ("楼下装修太吵了", "city-services-noise-complaint"),
        ("宝宝刚出生怎么上户扣", "civil-registry-newborn-registration"),
        ("医保码怎么弄", "medical-insurance-e-voucher"),
        ("小区没电梯，加装有钱补吗", "housing-elevator-retrofit"),
    ],
)
def test_sample_knowledge_base_understands_colloquial_chinese(
    sample_matcher: Matcher, question: str, expected: str
) -> None:
    match = sample_matcher.match(question, "zh")
    assert expected in [c.entry_id for c in match.candidates[:3]]
    assert match.decision is not Decision.NONE


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("身份证丢了怎么办", "civil-registry-id-card-replace-lost"),
        ("社保卡丢失了", "social-security-card-replace"),
        ("营业执照丢了", "business-licence-replace-lost"),
    ],
)
def test_the_sample_knowledge_base_knows_every_chinese_word_for_lost(
    sample_matcher: Matcher, question: str, expected: str
) -> None:
    """丢了 and 丢失 mean 遗失 (its synonyms): the replacement entry comes first, not the renewal."""
    assert sample_matcher.match(question, "zh").candidates[0].entry_id == expected
