"""Reading and writing knowledge-base files: YAML, CSV and JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.types import Button
from knowledge.entry import Category, DepartmentRef, Entry, KnowledgeBase, Link
from knowledge.formats import (
    ENTRY_FIELDS,
    Format,
    KnowledgeFileError,
    KnowledgeLoadError,
    Location,
    clean_text,
    dump,
    dumps,
    dumps_csv,
    dumps_yaml,
    load_file,
    load_paths,
    load_paths_with_sources,
    loads,
    phrase_fits_csv,
)
from storage.departments import CODE as DEPARTMENT_CODE

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO.parent / "shared" / "eval"
FORMATS: list[Format] = ["yaml", "csv", "jsonl"]

EXAMPLE = """\
departments:
  - code: REGISTRY
    name: {en: Civil Registry Office, zh: 户籍登记处}
categories:
  - code: civil-registry
    name: {en: Civil registry, zh: 户籍}
    auto_answer: false
synonyms:
  - [社会保险, 社保]
  - [identity card, ID card, ID]
entries:
  - id: registry-id-card-renew
    category: civil-registry
    department: REGISTRY
    question: {en: "  How do I renew my identity card?  ", zh: 身份证到期了怎么换领？}
    alternatives:
      en: [My ID card is expiring, Renew ID, ID card renewal]
      zh: [身份证过期怎么办, 换身份证]
    answer:
      en: |
        Book an appointment <a href="https://registry.example.gov/id">online</a>.

        Bring your <b>old card</b>.
      zh: 请网上预约。
    keywords: {en: [ID card, renewal], zh: [身份证, 换证]}
    links:
      - url: https://registry.example.gov/id
        title: {en: Online booking, zh: 网上预约}
    valid_from: 2026-01-01
    valid_until: 2027-12-31
    auto_answer: false
  - id: registry-birth
    category: civil-registry
    department: REGISTRY
    question: {en: How do I register a birth?}
    answer: {en: At any registry office.}
"""


def write(folder: Path, name: str, content: str | bytes) -> Path:
    """A file under ``folder`` (made as needed) holding ``content``."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_errors(*paths: Path) -> list[KnowledgeFileError]:
    """The errors that loading ``paths`` reports (failing the test if it loads)."""
    with pytest.raises(KnowledgeLoadError) as caught:
        load_paths(paths)
    return caught.value.errors


def text_errors(text: str, fmt: Format) -> list[KnowledgeFileError]:
    with pytest.raises(KnowledgeLoadError) as caught:
        loads(text, fmt, path="kb")
    return caught.value.errors


@pytest.fixture
def example() -> KnowledgeBase:
    return loads(EXAMPLE, "yaml")


# ---------------------------------------------------------------------------- YAML reading


def test_yaml_example_becomes_the_domain_model(example: KnowledgeBase) -> None:
    entry = example.entries[0]
    assert entry.id == "registry-id-card-renew"
    assert (entry.category, entry.department) == ("civil-registry", "REGISTRY")
    assert entry.question == {"en": "How do I renew my identity card?", "zh": "身份证到期了怎么换领？"}
    assert entry.alternatives["zh"] == ["身份证过期怎么办", "换身份证"]
    assert entry.answer["en"] == ('Book an appointment <a href="https://registry.example.gov/id">online</a>.'
                                  "\n\nBring your <b>old card</b>.")
    assert entry.keywords == {"en": ["ID card", "renewal"], "zh": ["身份证", "换证"]}
    assert entry.links == [Link("https://registry.example.gov/id",
                                {"en": "Online booking", "zh": "网上预约"})]
    assert (entry.valid_from, entry.valid_until) == (date(2026, 1, 1), date(2027, 12, 31))
    assert entry.auto_answer is False
    assert example.entries[1].auto_answer is True
    assert example.departments == [DepartmentRef("REGISTRY",
                                                 {"en": "Civil Registry Office", "zh": "户籍登记处"})]
    assert example.categories == [Category("civil-registry", {"en": "Civil registry", "zh": "户籍"}, False)]
    assert example.synonyms == [["社会保险", "社保"], ["identity card", "ID card", "ID"]]


def test_yaml_plain_scalars_stay_the_text_staff_typed() -> None:
    kb = loads("synonyms:\n  - [12345, 12345热线, 007, yes, 1.5]\n"
               "entries:\n  - id: '1'\n    question: {no: Hvordan fornyer jeg ID-kortet?}\n", "yaml")
    assert kb.synonyms == [["12345", "12345热线", "007", "yes", "1.5"]]
    assert kb.entries[0].question == {"no": "Hvordan fornyer jeg ID-kortet?"}


def test_text_is_cleaned_and_empty_values_are_left_out() -> None:
    kb = loads("entries:\n  - id: x\n    question: {en: \"  a\\r\\nb\\u0007  \", zh: '  '}\n"
               "    alternatives: {en: ['', ' c '], zh: []}\n", "yaml")
    assert kb.entries[0].question == {"en": "a\nb"}
    assert kb.entries[0].alternatives == {"en": ["c"]}


@pytest.mark.parametrize(("value", "expected"), [("yes", True), ("No", False), ("true", True), ("0", False)])
def test_flags_accept_the_usual_spellings(value: str, expected: bool) -> None:
    kb = loads(f"entries:\n  - id: x\n    auto_answer: {value}\n", "yaml")
    assert kb.entries[0].auto_answer is expected


def test_empty_yaml_document_is_an_empty_knowledge_base() -> None:
    assert loads("# nothing yet\n", "yaml") == KnowledgeBase()


# ---------------------------------------------------------------------------- writing and round trips


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_through_a_file(fmt: Format, example: KnowledgeBase, tmp_path: Path) -> None:
    path = tmp_path / f"kb.{fmt}"
    dump(example, path, fmt)
    loaded = load_file(path)
    assert loaded.entries == example.entries
    if fmt != "csv":
        assert loaded == example


def test_csv_holds_only_entries(example: KnowledgeBase) -> None:
    assert loads(dumps_csv(example), "csv") == KnowledgeBase(entries=example.entries)


def test_dumped_csv_starts_with_a_bom_for_excel(example: KnowledgeBase, tmp_path: Path) -> None:
    dump(example, tmp_path / "kb.csv", "csv")
    assert (tmp_path / "kb.csv").read_bytes().startswith(b"\xef\xbb\xbfid,category,department,question_en,")


def test_yaml_output_is_block_style_and_readable(example: KnowledgeBase) -> None:
    text = dumps_yaml(example)
    assert "户籍登记处" in text
    assert "      en: |-\n        Book an appointment" in text
    assert "valid_from: 2026-01-01\n" in text
    assert "{" not in text
    assert "synonyms:\n  - [社会保险, 社保]\n  - [identity card, ID card, ID]\n" in text
    assert text.index("departments:") < text.index("categories:") < text.index("entries:")


def test_yaml_output_is_stable(example: KnowledgeBase) -> None:
    text = dumps_yaml(example)
    assert dumps_yaml(loads(text, "yaml")) == text


def test_yaml_output_quotes_text_that_would_read_as_something_else() -> None:
    kb = KnowledgeBase(synonyms=[["null", "~", "12345"]])
    assert loads(dumps_yaml(kb), "yaml") == kb


def test_csv_refuses_a_phrase_it_cannot_hold() -> None:
    kb = KnowledgeBase(entries=[Entry("x", alternatives={"en": ["tea | coffee"]})])
    with pytest.raises(KnowledgeFileError) as caught:
        dumps_csv(kb)
    assert caught.value.field == "x: alternatives.en"


def test_empty_knowledge_base_dumps_to_loadable_text() -> None:
    for fmt in FORMATS:
        assert loads(dumps(KnowledgeBase(), fmt), fmt) == KnowledgeBase()


# ---------------------------------------------------------------------------- property-based round trips

LANGS = st.sampled_from(["en", "zh", "zh-Hant", "und", "fr"])
TEXT = st.text(max_size=30).map(clean_text).filter(bool)
MULTILINE = st.lists(st.text(max_size=60), min_size=1, max_size=4).map("\n".join).map(clean_text).filter(bool)
PHRASE = TEXT.filter(phrase_fits_csv)
LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
CODE = st.text(LOWER + "ABC _-", min_size=1, max_size=12).map(str.strip)
DEPARTMENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,11}", fullmatch=True)
ID = st.builds(str.__add__, st.text(LOWER, min_size=1, max_size=1), st.text(LOWER + "._-", max_size=15))
URL = st.builds("{}://{}.example/{}".format, st.sampled_from(["http", "https"]), st.text(LOWER, min_size=1),
                st.text(LOWER + "/._~%-", max_size=20))


def localized(text: st.SearchStrategy[str] = TEXT) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(LANGS, text, max_size=3)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    days = sorted(draw(st.lists(st.dates(), min_size=2, max_size=2)))
    return Entry(
        id=draw(ID),
        category=draw(st.just("") | TEXT),
        department=draw(st.just("") | CODE),
        question=draw(localized()),
        alternatives=draw(st.dictionaries(LANGS, st.lists(PHRASE, min_size=1, max_size=3), max_size=3)),
        answer=draw(localized(TEXT | MULTILINE)),
        keywords=draw(st.dictionaries(LANGS, st.lists(PHRASE, min_size=1, max_size=3), max_size=2)),
        links=draw(st.lists(st.builds(Link, URL, localized()), max_size=2)),
        valid_from=draw(st.none() | st.just(days[0])),
        valid_until=draw(st.none() | st.just(days[1])),
        auto_answer=draw(st.booleans()),
    )


@st.composite
def knowledge_bases(draw: st.DrawFn) -> KnowledgeBase:
    codes = st.lists(CODE.filter(bool), unique=True, max_size=3)
    return KnowledgeBase(
        entries=draw(st.lists(entries(), max_size=4, unique_by=lambda entry: entry.id)),
        categories=[Category(code, draw(localized()), draw(st.booleans())) for code in draw(codes)],
        departments=[DepartmentRef(code, draw(localized()))
                     for code in draw(st.lists(DEPARTMENT, unique=True, max_size=3))],
        synonyms=draw(st.lists(st.lists(TEXT, min_size=2, max_size=4), max_size=3)),
    )


@pytest.mark.parametrize("fmt", FORMATS)
# Each example is a whole knowledge base, slow to generate: fewer of them (1,500 per format passed once).
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
          deadline=None)
@given(kb=knowledge_bases())
def test_any_knowledge_base_round_trips(fmt: Format, kb: KnowledgeBase) -> None:
    loaded = loads(dumps(kb, fmt), fmt)
    assert loaded == (KnowledgeBase(entries=kb.entries) if fmt == "csv" else kb)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
ENTRY_LIKE = st.dictionaries(st.sampled_from([*ENTRY_FIELDS, "lang", "kind", "code", "terms"]), JSON_VALUES)


def loads_or_reports(text: str, fmt: Format) -> None:
    """Loading gives a knowledge base or a KnowledgeLoadError with its errors, never anything else."""
    errors: list[KnowledgeFileError] = []
    try:
        loads(text, fmt)
    except KnowledgeLoadError as exc:
        errors = exc.errors
        assert errors
    assert all(isinstance(error, KnowledgeFileError) for error in errors)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(deadline=None)
@given(text=st.text())
def test_arbitrary_text_never_crashes_the_loader(fmt: Format, text: str) -> None:
    loads_or_reports(text, fmt)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(["entries", "departments", "categories", "synonyms", "x"]),
                            st.lists(ENTRY_LIKE | JSON_VALUES, max_size=3) | JSON_VALUES))
def test_wrongly_shaped_yaml_never_crashes_the_loader(data: dict[str, object]) -> None:
    loads_or_reports(json.dumps(data), "yaml")  # JSON is YAML


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(ENTRY_LIKE | JSON_VALUES, max_size=4))
def test_wrongly_shaped_json_lines_never_crash_the_loader(lines: list[object]) -> None:
    loads_or_reports("\n".join(json.dumps(line) for line in lines), "jsonl")


# ---------------------------------------------------------------------------- YAML errors


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.yaml", "entries:\n  - id: a\n    question: {en: x\n")
    [error] = load_errors(path)
    assert (error.path, error.line) == (str(path), 4)
    assert error.message.startswith("malformed YAML")


def test_wrong_type_names_the_line_of_the_node_and_the_field() -> None:
    [error] = text_errors("entries:\n  - id: a\n    category: x\n    question:\n      en: [a, b]\n", "yaml")
    assert (error.line, error.field) == (5, "question.en")
    assert "expected text, got a list" in error.message


@pytest.mark.parametrize(("entry", "field", "message", "line"), [
    ("question: {en: x}", "id", "missing", 2),
    ("id: Registry ID", "id", "is not a valid id", 2),
    ("id: a\n    valid_from: 2026-02-30", "valid_from", "is not a date", 3),
    ("id: a\n    valid_from: 2027-01-01\n    valid_until: 2026-01-01", "valid_until", "before valid_from", 4),
    ("id: a\n    links: [{url: ftp://files.example.gov/x}]", "links[0].url", "is not an http(s) URL", 3),
    ("id: a\n    links:\n      - title: {en: x}", "links[0].url", "missing", 4),
    ("id: a\n    questoin: {en: x}", "questoin", "unknown field", 3),
    ("id: a\n    question: {english: x}", "question", "is not a language code", 3),
    ("id: a\n    auto_answer: sometimes", "auto_answer", "expected true or false", 3),
    ("id: a\n    category: " + "c" * 101, "category", "longer than 100 characters", 3),
    ("id: a\n    department: " + "D" * 51, "department", "longer than 50 characters", 3),
])
def test_bad_entries_are_reported_with_field_and_line(entry: str, field: str, message: str,
                                                      line: int) -> None:
    [error] = text_errors(f"entries:\n  - {entry}\n", "yaml")
    assert (error.field, error.line) == (field, line)
    assert message in error.message


@pytest.mark.parametrize(("section", "most"), [("departments", 50), ("categories", 48)])
def test_a_code_longer_than_the_database_or_a_button_takes_is_reported(section: str, most: int) -> None:
    loads(f"{section}:\n  - code: {'X' * most}\n    name: {{en: x}}\n", "yaml")  # the longest is fine
    [error] = text_errors(f"{section}:\n  - code: {'X' * (most + 1)}\n    name: {{en: x}}\n", "yaml")
    assert (error.field, error.line) == ("code", 2)
    assert f"longer than {most} characters" in error.message


def test_a_category_code_is_short_enough_for_the_buttons_that_carry_it() -> None:
    """The topic menu's and the escalation's buttons carry it in Telegram's 64 bytes of callback data."""
    longest = "户籍" * 8  # 48 bytes of UTF-8
    kb = loads(f"categories:\n  - code: {longest}\n    name: {{zh: 户籍}}\n", "yaml")
    for payload in (f"cat:{longest}:99", f"esc:cat:{'f' * 6}:{longest}"):  # see handlers/browse, escalation
        Button("户籍", payload=payload)
    assert [c.code for c in kb.categories] == [longest]
    for code, unit in (("户籍证件" * 4 + "办", "bytes of UTF-8 (a Chinese character takes 3)"),
                       ("residence-permits-and-household-registration-for-new-arrivals", "characters")):
        [error] = text_errors(f"categories:\n  - code: {code}\n    name: {{zh: 户籍}}\n", "yaml")
        assert (error.field, error.line) == ("code", 2)
        assert error.message.endswith(f"' is longer than 48 {unit}, which is what a button can carry")


@pytest.mark.parametrize("code", ["TAX", "R2.n_3", "civil-registry", "Tax Bureau", "税务局", "-TAX", "T/2"])
def test_a_department_code_is_one_govbot_departments_add_would_take(code: str) -> None:
    """The department API transfers cases only to such codes; the consent button carries the code."""
    text = f"departments:\n  - code: {code}\n    name: {{en: Tax}}\n"
    if DEPARTMENT_CODE.match(code):
        assert [d.code for d in loads(text, "yaml").departments] == [code]
    else:
        [error] = text_errors(text, "yaml")
        assert (error.line, error.field) == (2, "code")
        assert error.message.startswith(f"{code!r} is not a department code: use letters, digits")


def test_unknown_top_level_key_is_an_error() -> None:
    [error] = text_errors("departments: []\nentry:\n  - id: a\n", "yaml")
    assert (error.line, error.field) == (2, "entry")
    assert "unknown top-level key" in error.message


def test_repeated_key_in_a_mapping_is_an_error() -> None:
    [error] = text_errors("entries:\n  - id: a\n    question: {en: x, en: y}\n", "yaml")
    assert (error.line, error.field) == (3, "en")


def test_absurd_nesting_is_refused_not_crashed() -> None:
    [error] = text_errors("[" * 60 + "]" * 60, "yaml")
    assert "nested more than 50 levels" in error.message
    # Deeper still, PyYAML 6.0.4 and later refuse it themselves (its scanner reads ahead); either way, line 1.
    [error] = text_errors("[" * 100_000, "yaml")
    assert "nest" in error.message
    assert error.line == 1


def test_duplicate_ids_in_one_file_name_both_lines() -> None:
    [error] = text_errors("entries:\n  - id: a\n  - id: b\n  - id: a\n", "yaml")
    assert (error.line, error.field) == (4, "id")
    assert "already defined at kb:2" in error.message


def test_duplicate_ids_across_files_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "entries:\n  - id: same\n")
    second = write(tmp_path, "b.jsonl", '{"id": "other"}\n{"id": "same"}\n')
    [error] = load_errors(first, second)
    assert str(error) == f"{second}:2: id: duplicate id 'same': already defined at {first}:2"


def test_duplicate_department_and_category_codes_are_errors() -> None:
    errors = text_errors("departments: [{code: TAX}, {code: TAX}]\ncategories: [{code: tax}, {code: tax}]\n",
                         "yaml")
    assert [error.field for error in errors] == ["code", "code"]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "entries:\n  - id: A\n  - id: b\n    valid_from: soon\n")
    write(tmp_path, "b.yaml", "entries:\n  - {id: c, links: [{url: 'javascript:x'}]}\nextra: 1\n")
    errors = load_errors(tmp_path)
    assert [(Path(e.path).name, e.line, e.field) for e in errors] == [
        ("a.yaml", 2, "id"), ("a.yaml", 4, "valid_from"),
        ("b.yaml", 2, "links[0].url"), ("b.yaml", 3, "extra"),
    ]


def test_load_error_lists_every_problem() -> None:
    error = KnowledgeLoadError([KnowledgeFileError("a.yaml", 3, "id", "missing"),
                                KnowledgeFileError("b.csv", None, None, "not valid UTF-8")])
    assert str(error).splitlines() == ["2 problem(s) in the knowledge base:", "  a.yaml:3: id: missing",
                                       "  b.csv: not valid UTF-8"]


# ---------------------------------------------------------------------------- CSV

CSV_HEADER = ("id,category,department,question_en,question_zh,alternatives_en,alternatives_zh,answer_en,"
              "answer_zh,keywords_en,keywords_zh,links,valid_from,valid_until,auto_answer\n")
CSV_ROW = ('tax-1,tax,TAX,How do I file?,怎么报税？,File taxes | Tax return,报税 | 个税申报,'
           '"Online.\n\nOr by post.",'
           '网上办理。,tax,个税,"[{""url"": ""https://tax.example.gov"", ""title"": {""en"": ""Tax""}}]",'
           "2026-01-01,,FALSE\n")


def test_csv_row_becomes_an_entry() -> None:
    [entry] = loads(CSV_HEADER + CSV_ROW, "csv").entries
    assert entry == Entry(
        id="tax-1", category="tax", department="TAX",
        question={"en": "How do I file?", "zh": "怎么报税？"},
        alternatives={"en": ["File taxes", "Tax return"], "zh": ["报税", "个税申报"]},
        answer={"en": "Online.\n\nOr by post.", "zh": "网上办理。"},
        keywords={"en": ["tax"], "zh": ["个税"]},
        links=[Link("https://tax.example.gov", {"en": "Tax"})],
        valid_from=date(2026, 1, 1), auto_answer=False,
    )


LOOKS_LIKE_A_FORMULA = [
    "- bring your old card\n- pay the fee", "+86 10 1234 5678", "=SUM(A1:A9)", "@registry office",
    "'=already quoted", "'-", "'",
]
"""Answers a spreadsheet would run as formulas, and ones that begin with the quote that prevents it."""


@pytest.mark.parametrize("answer", LOOKS_LIKE_A_FORMULA)
def test_csv_answer_that_looks_like_a_formula_round_trips_unchanged(answer: str) -> None:
    kb = KnowledgeBase(entries=[Entry("a", question={"en": "x"}, answer={"en": answer})])
    assert loads(dumps_csv(kb), "csv") == kb


@pytest.mark.parametrize("cell", ["renew ID | ID card |", "| renew ID | ID card", "renew ID | | ID card"])
def test_csv_pipes_left_at_either_end_of_a_list_cell_read_as_separators(cell: str) -> None:
    """What a CSV import reads must export as CSV again, where a phrase cannot begin or end with " |"."""
    kb = loads(f"id,question_en,alternatives_en\na,Renew?,{cell}\n", "csv")
    assert kb.entries[0].alternatives == {"en": ["renew ID", "ID card"]}
    assert loads(dumps_csv(kb), "csv") == kb


def test_csv_export_of_an_entry_with_thousands_of_phrasings_reads_back() -> None:
    """Python's csv module refuses a cell over 128 KiB unless told otherwise; exporting writes such cells."""
    phrasings = [f"how do I renew the permit for case number {n}" for n in range(4000)]
    kb = KnowledgeBase(entries=[Entry("a", question={"en": "x"}, alternatives={"en": phrasings})])
    assert loads(dumps_csv(kb), "csv") == kb


@pytest.mark.parametrize("text", ["-x", "+x", "=x", "@x", "\t=x", " =x", "'=x"])
def test_csv_cells_a_spreadsheet_would_run_are_written_behind_a_quote(text: str) -> None:
    kb = KnowledgeBase(entries=[Entry("a", question={"en": text}, alternatives={"en": [text, "y"]},
                                      answer={"en": text})])
    [row] = list(csv.DictReader(io.StringIO(dumps_csv(kb), newline="")))
    assert (row["question_en"], row["alternatives_en"], row["answer_en"]) == (
        "'" + text, f"'{text} | y", "'" + text,
    )


def test_csv_cell_quoted_by_hand_reads_as_the_text_behind_the_quote() -> None:
    # A spreadsheet saves a cell typed as '-list either with the quote or without it; both mean "-list".
    [quoted, bare, harmless] = loads("id,answer_en\na,'- one\nb,- one\nc,'Tis\n", "csv").entries
    assert (quoted.answer, bare.answer, harmless.answer) == ({"en": "- one"}, {"en": "- one"}, {"en": "'Tis"})


def test_csv_with_utf8_bom_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.csv", (CSV_HEADER + CSV_ROW).encode("utf-8-sig"))
    assert load_file(path).entries[0].id == "tax-1"


def test_gbk_csv_is_an_error_that_says_to_resave_as_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.csv", "id,question_zh\nx,你好\n".encode("gbk"))
    [error] = load_errors(path)
    assert error.line == 2
    assert "not valid UTF-8" in error.message
    assert "GBK" in error.message
    assert "re-save it as UTF-8" in error.message


UNICODE_TEXT = {  # one entry in each format, as Notepad or Excel would save it
    "kb.csv": "id,question_en,question_zh,answer_en,answer_zh\nx,Pay tax?,怎么交税,Online.,网上缴纳。\n",
    "kb.yaml": "entries:\n  - id: x\n    question: {en: Pay tax?, zh: 怎么交税}\n    answer: {en: Online.}\n",
    "kb.jsonl": '{"id": "x", "question": {"en": "Pay tax?", "zh": "怎么交税"}, "answer": {"en": "Online."}}'
                '\n',
}


@pytest.mark.parametrize("name", UNICODE_TEXT)
@pytest.mark.parametrize(("encoding", "bom", "said"), [
    ("utf-16-le", b"\xff\xfe", "UTF-16 LE"), ("utf-16-be", b"\xfe\xff", "UTF-16 BE"),
    ("utf-16-le", b"", "UTF-16 LE"), ("utf-16-be", b"", "UTF-16 BE"),
])
def test_utf16_is_an_error_that_names_it_and_says_to_save_as_utf8(
    tmp_path: Path, name: str, encoding: str, bom: bytes, said: str
) -> None:
    path = write(tmp_path, name, bom + UNICODE_TEXT[name].encode(encoding))
    [error] = load_errors(path)
    assert error.line is None
    assert said in error.message
    assert "save it as UTF-8" in error.message


def test_utf16_of_english_only_is_not_read_as_utf8_with_zero_bytes(tmp_path: Path) -> None:
    # Every byte pair of English text in UTF-16 is valid UTF-8: a character and a zero byte.
    path = write(tmp_path, "kb.csv", "id,question_en,answer_en\nx,Pay tax?,Online.\n".encode("utf-16-le"))
    [error] = load_errors(path)
    assert "UTF-16 LE" in error.message


@pytest.mark.parametrize("name", UNICODE_TEXT)
def test_utf8_with_a_bom_loads_in_every_format(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, UNICODE_TEXT[name].encode("utf-8-sig"))
    [entry] = load_file(path).entries
    assert entry.question == {"en": "Pay tax?", "zh": "怎么交税"}


def test_csv_row_with_wrong_cell_count_names_its_line() -> None:
    [error] = text_errors("id,question_en\na,x\nb,y,z\n", "csv")
    assert error.line == 3
    assert "3 cells but the header has 2 columns" in error.message


def test_csv_unclosed_quote_is_an_error() -> None:
    [error] = text_errors('id,question_en\na,"x\nb,y\n', "csv")
    assert error.message.startswith("malformed CSV")


def test_csv_lines_count_the_lines_inside_quoted_cells() -> None:
    [error] = text_errors('id,answer_en\na,"one\ntwo\nthree"\nB,y\n', "csv")
    assert (error.line, error.field) == (5, "id")


def test_csv_extra_language_columns_and_blank_rows() -> None:
    kb = loads("id,question_en,question_fr,answer_fr\n,,,\na,Hello,Bonjour,Salut\n", "csv")
    assert kb.entries == [Entry("a", question={"en": "Hello", "fr": "Bonjour"}, answer={"fr": "Salut"})]


@pytest.mark.parametrize(("header", "row", "field", "message"), [
    ("id,question_en", "a,x", None, None),
    ("id,question_en,,", "a,x,, ", None, None),  # a spreadsheet's empty columns past the last one used
    ("id,,question_en", "a,,x", None, None),
    ("id,,question_en", "a,oops,x", "column 2", "no name in the header"),
    ("question_en", "x", "id", "no id column"),
    ("id,title_en", "a,x", "title_en", "unknown column"),
    ("id,id", "a,a", "id", "appears twice"),
    ("id,links", "a,https://x.example.gov", "links", "expected JSON"),
    ("id,auto_answer", "a,maybe", "auto_answer", "expected true or false"),
])
def test_csv_header_and_cell_problems(header: str, row: str, field: str | None, message: str | None) -> None:
    if message is None:
        assert loads(f"{header}\n{row}\n", "csv").entries == [Entry("a", question={"en": "x"})]
        return
    [error] = text_errors(f"{header}\n{row}\n", "csv")
    assert error.field == field
    assert message in error.message


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_separated_by_semicolons_or_tabs_reads_as_with_commas(delimiter: str) -> None:
    """Excel in many European locales saves CSV with semicolons; quoted cells may hold any separator."""
    rows = [["id", "question_en", "answer_en", "keywords_en"],
            ["a", "Fees; costs?", "10, or 5\tfor children", "fee | cost"],
            ["b", "Hours?", "9-5", ""]]

    def written(separator: str) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter=separator, lineterminator="\n").writerows(rows)
        return out.getvalue()

    assert loads(written(delimiter), "csv") == loads(written(","), "csv")
    assert loads(written(delimiter), "csv").entries[0].answer == {"en": "10, or 5\tfor children"}


def test_csv_header_quoted_and_separated_by_semicolons_reads() -> None:
    [entry] = loads('"id";"question_en"\r\n"a";"Fees, costs?"\r\n', "csv").entries
    assert entry == Entry("a", question={"en": "Fees, costs?"})


@pytest.mark.parametrize(("text", "answer"), [
    ("id,answer_en\na,one; two\tthree\n", {"en": "one; two\tthree"}),
    ("id,\tanswer_en\na,x;y\n", {"en": "x;y"}),  # header cells are stripped: a tab there was harmless
    (" id \t\na\n", {}),  # a header of one column, with a tab after it
])
def test_csv_with_a_comma_header_reads_as_before(text: str, answer: dict[str, str]) -> None:
    [entry] = loads(text, "csv").entries
    assert (entry.id, entry.answer) == ("a", answer)


def test_csv_export_stays_comma_separated() -> None:
    kb = KnowledgeBase(entries=[Entry("a", question={"en": "x; y"}, answer={"en": "z\tw"})])
    assert dumps_csv(kb).splitlines()[0].startswith("id,category,department,")


# ---------------------------------------------------------------------------- JSON Lines


def test_jsonl_reads_the_evaluation_format() -> None:
    kb = loads('{"id": "so-2", "question": "Safe?", "answer": "Yes.", "lang": "en", "category": "safety",'
               ' "source": "x"}\n\n{"id": "jhu-1", "question": "Frage?", "answer": "Ja.", "lang": "und",'
               ' "category": ""}\n', "jsonl")
    assert kb.entries == [Entry("so-2", category="safety", question={"en": "Safe?"}, answer={"en": "Yes."}),
                          Entry("jhu-1", question={"und": "Frage?"}, answer={"und": "Ja."})]


def test_jsonl_reads_kind_lines_and_full_entries(example: KnowledgeBase) -> None:
    lines = ['{"kind": "department", "code": "REGISTRY",'
             ' "name": {"en": "Civil Registry Office", "zh": "户籍登记处"}}',
             '{"kind": "category", "code": "civil-registry", "name": {"en": "Civil registry", "zh": "户籍"},'
             ' "auto_answer": false}',
             '{"kind": "synonyms", "terms": ["社会保险", "社保"]}',
             '{"kind": "synonyms", "terms": ["identity card", "ID card", "ID"]}',
             *(json.dumps(entry.to_dict(), ensure_ascii=False) for entry in example.entries)]
    assert loads("\r\n".join(lines), "jsonl") == example


@pytest.mark.parametrize(("line", "field", "message"), [
    ('{"id": "a", "question": {"en": "x"}', None, "invalid JSON at column"),
    ('["id", "a"]', None, "expected a JSON object"),
    ('{"id": "a", "id": "b"}', None, "appears twice"),
    ('{"kind": "faq", "id": "a"}', "kind", "unknown kind"),
    ('{"id": "a", "question": "x", "lang": "English"}', "lang", "is not a language code"),
    ('{"id": "a", "question": "x"}', "question", "expected a mapping of language code"),
    ('{"kind": "synonyms", "terms": ["only one"]}', "synonyms", "at least two terms"),
    # Half an emoji, as a system counting UTF-16 units leaves it when it cuts a text short.
    ('{"id": "a", "answer": {"en": "Thanks \\ud83d"}}', "answer.en", "half a surrogate pair"),
    ('{"id": "a\\udc00"}', "id", "half a surrogate pair"),
])
def test_bad_json_lines_name_their_line(line: str, field: str | None, message: str) -> None:
    [error] = text_errors(f'{{"id": "ok"}}\n\n{line}\n', "jsonl")
    assert (error.line, error.field) == (3, field)
    assert message in error.message


# ---------------------------------------------------------------------------- files and folders


@pytest.mark.parametrize("name", ["kb.yaml", "kb.yml", "kb.csv", "kb.jsonl"])
def test_empty_file_is_an_empty_knowledge_base(name: str, tmp_path: Path) -> None:
    assert load_file(write(tmp_path, name, "")) == KnowledgeBase()


def test_folder_is_read_recursively_in_path_order_skipping_hidden_files(tmp_path: Path) -> None:
    write(tmp_path, "b/z.jsonl", '{"id": "from-b-z"}\n')
    write(tmp_path, "a.yml", "entries: [{id: from-a}]\n")
    write(tmp_path, "b/c.csv", "id\nfrom-b-c\n")
    write(tmp_path, "README.md", "not knowledge")
    write(tmp_path, ".git/x.yaml", "entries: [{id: from-git}]\n")
    write(tmp_path, ".draft.yaml", ": broken")
    kb = load_paths([tmp_path, tmp_path / "a.yml"])
    assert [entry.id for entry in kb.entries] == ["from-a", "from-b-c", "from-b-z"]


def test_folder_without_knowledge_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "hello")
    [error] = load_errors(tmp_path)
    assert "no knowledge-base files" in error.message


def test_missing_path_and_unknown_suffix_are_errors(tmp_path: Path) -> None:
    errors = load_errors(tmp_path / "nowhere.yaml", write(tmp_path, "kb.xlsx", b"PK"))
    assert [error.message for error in errors] == [
        "no such file or folder", "unknown format; expected .yaml, .yml, .csv or .jsonl"]


def test_sources_say_where_each_entry_was_defined(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.yaml", EXAMPLE)
    _, sources = load_paths_with_sources([path])
    assert sources == {"registry-id-card-renew": Location(str(path), 12),
                       "registry-birth": Location(str(path), 32)}


def test_file_error_reads_path_line_field_message() -> None:
    assert str(KnowledgeFileError("kb.yaml", 7, "id", "missing")) == "kb.yaml:7: id: missing"
    assert str(KnowledgeFileError("kb.csv", None, None, "not valid UTF-8")) == "kb.csv: not valid UTF-8"


def test_evaluation_files_load() -> None:
    files = [EVAL / "kb.jsonl", EVAL / "distractors.jsonl", EVAL / "zh" / "kb.jsonl"]
    kb, sources = load_paths_with_sources(files)
    ids = [entry.id for entry in kb.entries]
    assert (len(ids), len(set(ids))) == (129 + 2663 + 90, 129 + 2663 + 90)
    assert kb.entry("so-2") == Entry(
        "so-2", category="safety",
        question={"en": "Are COVID-19 vaccines being held to the same safety standards as other vaccines?"},
        answer={"en": kb.entries[0].answer["en"]})
    assert sum("und" in entry.question for entry in kb.entries) == 1345
    assert sources["zh-001"] == Location(str(EVAL / "zh" / "kb.jsonl"), 1)
    assert kb.entries[129 + 2663].question == {"zh": "身份证到期了怎么换领新证？"}


def test_bundled_sample_knowledge_base_loads() -> None:
    kb = load_paths([REPO / "knowledge" / "sample"])
    assert kb.entries
    assert kb.departments
    assert kb.categories


def test_an_id_too_long_for_a_button_is_refused() -> None:
    with pytest.raises(KnowledgeLoadError, match="longer than 48 characters"):
        loads('{"id": "' + "a" * 49 + '", "question": {"en": "q"}, "answer": {"en": "a"}}', "jsonl")
