"""Knowledge-base lint: completeness, Telegram's limits, references, duplicates, expiry."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from knowledge.entry import Category, DepartmentRef, Entry, KnowledgeBase
from knowledge.formats import Location, load_paths, load_paths_with_sources
from knowledge.lint import (
    TELEGRAM_MESSAGE_LIMIT,
    Finding,
    lint,
    near_duplicates,
    telegram_html_problems,
    telegram_length,
)

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO.parent / "shared" / "eval"
NOT_ENTITY = "is not an entity Telegram knows; write a literal & as &amp;"


def entry(entry_id: str = "id-renew", **changes: Any) -> Entry:
    """A complete entry that lint has nothing to say about, with ``changes``."""
    complete = Entry(
        id=entry_id,
        category="civil-registry",
        department="REGISTRY",
        question={"en": "How do I renew my identity card?", "zh": "身份证到期了怎么换领？"},
        alternatives={"en": ["My ID card is expiring", "Renew ID", "ID card renewal"],
                      "zh": ["身份证过期怎么办", "换身份证", "身份证续期"]},
        answer={"en": "Book <b>online</b> at <a href=\"https://registry.example.gov\">the registry</a>.",
                "zh": "请<b>网上</b>预约。"},
    )
    return complete.replace(**changes)


def kb_of(*entries: Entry) -> KnowledgeBase:
    return KnowledgeBase(entries=list(entries), categories=[Category("civil-registry")],
                         departments=[DepartmentRef("REGISTRY")])


def found(kb: KnowledgeBase, **options: Any) -> set[tuple[str, str | None, str | None]]:
    """(severity, entry id, field) of every finding."""
    return {(finding.severity, finding.entry_id, finding.field) for finding in lint(kb, **options)}


def test_complete_entry_has_no_findings() -> None:
    assert lint(kb_of(entry())) == []


def test_missing_owner_fields_are_errors() -> None:
    assert found(kb_of(entry(category="", department=""))) == {
        ("error", "id-renew", "category"), ("error", "id-renew", "department")}


def test_missing_translation_is_an_error_for_each_required_language() -> None:
    incomplete = entry(question={"en": "How do I renew my identity card?"}, answer={"en": "Online."},
                       alternatives={"en": ["a b c", "d e f", "g h i"]})
    assert found(kb_of(incomplete)) == {("error", "id-renew", "question.zh"),
                                        ("error", "id-renew", "answer.zh")}
    assert found(kb_of(incomplete), languages=("en",)) == set()


def test_question_without_answer_in_another_language_is_an_error() -> None:
    french = ["carte expirée", "renouveler", "carte d'identité"]
    extra = entry(question={**entry().question, "fr": "Comment renouveler ma carte ?"},
                  alternatives={**entry().alternatives, "fr": french})
    assert found(kb_of(extra)) == {("error", "id-renew", "answer.fr")}


def test_fewer_than_three_alternatives_is_a_warning() -> None:
    few = entry(alternatives={"en": ["Renew ID", "ID card renewal"], "zh": entry().alternatives["zh"]})
    [finding] = lint(kb_of(few))
    assert (finding.severity, finding.field) == ("warning", "alternatives.en")
    assert finding.message.startswith("2 alternative phrasings")


@pytest.mark.parametrize(("answer", "too_long"), [
    ("a" * TELEGRAM_MESSAGE_LIMIT, False),
    ("a" * (TELEGRAM_MESSAGE_LIMIT + 1), True),
    ("<b>" + "a" * TELEGRAM_MESSAGE_LIMIT + "</b>", False),
    ("&amp;" * TELEGRAM_MESSAGE_LIMIT, False),
    ("😀" * (TELEGRAM_MESSAGE_LIMIT // 2 + 1), True),
])
def test_answer_over_telegram_limit_is_an_error(answer: str, too_long: bool) -> None:
    findings = found(kb_of(entry(answer={**entry().answer, "en": answer})))
    assert (("error", "id-renew", "answer.en") in findings) is too_long


def test_telegram_counts_visible_text_in_utf16_units() -> None:
    assert telegram_length('<a href="https://x.example">go</a> &lt;3 😀') == len("go <3 ") + 2


def test_unknown_department_is_an_error_unless_configured_elsewhere() -> None:
    kb = kb_of(entry(department="TAX"))
    assert found(kb) == {("error", "id-renew", "department")}
    assert found(kb, known_departments={"TAX"}) == set()


def test_unknown_category_is_a_warning() -> None:
    assert found(kb_of(entry(category="taxes"))) == {("warning", "id-renew", "category")}


def test_duplicate_ids_are_an_error() -> None:
    other = entry(question={"en": "Where is the tax office?", "zh": "税务局在哪里？"},
                  alternatives={"en": ["tax office address", "tax bureau location", "find the tax office"],
                                "zh": ["税务局地址", "税务局位置", "去哪交税"]})
    [finding] = lint(kb_of(entry(), other))
    assert (finding.severity, finding.entry_id, finding.field) == ("error", "id-renew", "id")
    assert finding.message == "2 entries share this id"


def test_near_duplicate_questions_of_different_entries_are_a_warning_naming_both() -> None:
    twin = entry("id-renew-2", question={"en": "how do I renew my identity card", "zh": "护照怎么办理？"},
                 alternatives={"en": ["passport", "new passport", "passport office"],
                               "zh": ["护照", "办护照", "护照过期"]})
    [finding] = lint(kb_of(entry(), twin))
    assert (finding.severity, finding.entry_id, finding.field) == ("warning", "id-renew", "question.en")
    assert "'id-renew-2'" in finding.message
    assert "100%" in finding.message


def test_near_duplicates_compare_alternatives_and_word_order() -> None:
    first = entry("a", alternatives={"en": ["card renewal for my ID"]})
    second = entry("b", question={"en": "Renewal of my ID card for"})
    [finding] = near_duplicates([first, second])
    assert finding.entry_id == "a"
    assert finding.field == "alternatives.en[0]"
    assert "question.en of 'b'" in finding.message


def test_near_duplicates_ignore_the_same_entry_other_languages_and_distant_texts() -> None:
    repeated = entry("a", question={"en": "Renew ID"}, alternatives={"en": ["Renew ID", "renew id!"]})
    english = Entry("b", question={"en": "Where do I pay tax?"})
    chinese = Entry("c", question={"zh": "Where do I pay tax?"})
    assert near_duplicates([repeated, english, chinese]) == []


def test_near_duplicate_threshold_is_a_parameter() -> None:
    entries = [Entry("a", question={"en": "How do I renew my ID card?"}),
               Entry("b", question={"en": "How do I renew my bus card?"})]
    assert near_duplicates(entries, threshold=95) == []
    assert len(near_duplicates(entries, threshold=80)) == 1


def test_near_duplicates_report_each_pair_once_with_its_best_score() -> None:
    first = Entry("a", question={"en": "renew id card"},
                  alternatives={"en": ["renew my id card", "renew id"]})
    second = Entry("b", question={"en": "renew id card"}, alternatives={"en": ["renew my id card"]})
    [finding] = near_duplicates([first, second])
    assert "100%" in finding.message


def test_near_duplicates_found_in_the_evaluation_set() -> None:
    kb = load_paths([EVAL / "kb.jsonl", EVAL / "distractors.jsonl"])
    findings = near_duplicates(kb.entries)
    pairs = {(finding.entry_id, finding.message.rsplit("'", 2)[-2]) for finding in findings}
    assert ("so-63", "jhu-2589") in pairs


@pytest.mark.parametrize(("answer", "problem"), [
    ("Line one<br>line two", "<br> is not supported by Telegram"),
    ("<div>x</div>", "<div> is not supported by Telegram"),
    ("<b>bold", "<b> is not closed"),
    ("<b><i>x</b></i>", "<i> is not closed before </b>"),
    ("x</b>", "</b> without a matching <b>"),
    ("children < 12", "a bare '<' must be written &lt;"),
    ("AT&T", f"'&T' {NOT_ENTITY}"),
    ("AT & T", "a bare '&' must be written &amp;"),
    ("</i>", "</i> without a matching <i>"),
    ("a&nbsp;b", f"'&nbsp;' {NOT_ENTITY}"),
    ('<a href="https://x.example/?a=1&b=2">x</a>', f"'&b' {NOT_ENTITY}"),
    ("<a>link</a>", "<a> without href"),
    ("<span>x</span>", '<span> is supported only as <span class="tg-spoiler">'),
    ("<!-- note -->x", "HTML comments are not supported by Telegram"),
])
def test_html_telegram_cannot_parse_is_an_error(answer: str, problem: str) -> None:
    [finding] = lint(kb_of(entry(answer={**entry().answer, "en": answer})))
    assert (finding.severity, finding.field, finding.message) == ("error", "answer.en", problem)


def test_html_telegram_supports_passes() -> None:
    answer = ('<b>b</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <ins>n</ins> <s>s</s> <del>d</del> '
              '<a href="https://x.example">a</a> <code>c</code> '
              '<pre><code class="language-python">p</code></pre> '
              '<blockquote>q</blockquote> <tg-spoiler>t</tg-spoiler> <span class="tg-spoiler">s</span> '
              "&lt; &gt; &amp; &quot; &#39; &#x1F600;")
    assert telegram_html_problems(answer) == []


def test_expired_entry_is_a_warning_only_when_today_is_given() -> None:
    dated = kb_of(entry(valid_until=date(2026, 3, 31)))
    assert found(dated) == set()
    assert found(dated, today=date(2026, 3, 31)) == set()
    assert found(dated, today=date(2026, 4, 1)) == {("warning", "id-renew", "valid_until")}


def test_validity_ending_before_it_starts_is_an_error() -> None:
    backwards = kb_of(entry(valid_from=date(2027, 1, 1), valid_until=date(2026, 1, 1)))
    assert found(backwards) == {("error", "id-renew", "valid_until")}


def test_sources_give_findings_a_file_and_line() -> None:
    findings = lint(kb_of(entry(category="")), sources={"id-renew": Location("kb/registry.yaml", 12)})
    assert [(finding.path, finding.line) for finding in findings] == [("kb/registry.yaml", 12)]
    assert str(findings[0]) == "kb/registry.yaml:12: error: id-renew: category: no category"


def test_finding_reads_well_without_location() -> None:
    assert str(Finding("warning", None, None, "nothing to see")) == "warning: nothing to see"


def test_bundled_sample_has_no_lint_errors() -> None:
    kb, sources = load_paths_with_sources([REPO / "knowledge" / "sample"])
    errors = [str(finding) for finding in lint(kb, sources=sources) if finding.severity == "error"]
    assert errors == []
