"""Normalisation and tokenisation of English, Chinese and mixed text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knowledge.normalise import (
    MAX_INPUT_CHARS,
    SynonymMap,
    guess_language,
    normalise,
    pinyin,
    stem,
    tokens,
    word_term,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width letters and digits
        ("２０２６年度", "2026年度"),
        ("Hello World", "hello world"),  # case folding
        ("Straße", "strasse"),
        ("怎麼查公積金餘額", "怎么查公积金余额"),  # Traditional to Simplified
        ("hello,world!?", "hello world"),  # punctuation folds to a space
        ("你好，世界。", "你好 世界"),  # Chinese punctuation too
        ("  many \t spaces\n\nhere  ", "many spaces here"),  # whitespace folds
        ("a\x00b\x07c", "a b c"),  # control characters become spaces
        ("co\u200bvid\ufeff", "covid"),  # invisible format characters disappear
        ("a\ud800b", "ab"),  # lone surrogates disappear
        ("\u3000全角空格", "全角空格"),  # ideographic space
        ("Is J&J safe?", "is j&j safe"),  # & inside a name stays
        ("salt & pepper", "salt pepper"),  # & alone is punctuation
        ("snake_case_word", "snake case word"),
        ("Can't I? I’m sure it won't", "can not i i am sure it will not"),  # contractions
        ("Johnson's vaccine", "johnson vaccine"),  # possessive
        ("don´t, can`t, it’s", "do not can not it"),  # apostrophes typed as accents or quotes
        ("身份证丢了咋办 要带啥", "身份证丢了怎么办 要带什么"),  # colloquial Chinese
        ("😀🎉", ""),  # emoji only
        ("", ""),
    ],
)
def test_normalise_folds_text_to_one_form(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_cuts_very_long_input() -> None:
    assert len(normalise("a " * 10_000)) < MAX_INPUT_CHARS


def test_normalise_accepts_anything_that_is_not_text() -> None:
    assert normalise(None) == ""  # type: ignore[arg-type]
    assert normalise(42) == ""  # type: ignore[arg-type]


@given(st.text())
def test_text_functions_never_raise(text: str) -> None:
    assert isinstance(normalise(text), str)
    assert all(isinstance(t, str) and t for t in tokens(text))
    assert guess_language(text) in ("en", "zh")


def test_tokens_are_stems_without_function_words() -> None:
    assert tokens("Are the vaccines safe for vaccinated people?") == ["vaccin", "safe", "vaccin", "peopl"]


def test_tokens_keep_question_words_and_negation() -> None:
    assert tokens("Who should not take it?") == ["who", "should", "not", "take"]


def test_chinese_is_cut_into_bigrams_without_question_words() -> None:
    assert tokens("请问社保卡怎么激活") == ["社保", "保卡", "激活"]


def test_a_single_chinese_character_is_its_own_token() -> None:
    assert tokens("卡") == ["卡"]


def test_mixed_text_keeps_both_scripts() -> None:
    assert tokens("ETC怎么办理") == ["etc", "办理"]
    assert tokens("shebao卡丢了") == ["shebao", "卡丢"]


def test_stem_leaves_short_and_non_english_words_alone() -> None:
    assert stem("vaccinations") == "vaccin"
    assert stem("kid") == "kid"
    assert stem("grüsse") == "grüsse"


@pytest.mark.parametrize(
    ("variant", "base"),
    [("kids", "children"), ("jab", "dose"), ("physician", "doctor"), ("received", "get"), ("paid", "pay")],
)
def test_everyday_paraphrases_and_irregular_forms_share_a_term(variant: str, base: str) -> None:
    assert word_term(variant) == word_term(base)


def test_words_outside_the_paraphrase_list_keep_their_stem() -> None:
    assert word_term("vaccinations") == "vaccin"
    assert word_term("passport") != word_term("dose")
    assert tokens("Can kids get the jab?") == tokens("Can children receive a shot?")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How do I renew my ID card?", "en"),
        ("身份证怎么换", "zh"),
        ("ETC怎么办理", "zh"),
        ("shebao卡丢了", "zh"),
        ("What does 社保 mean in English?", "en"),
        ("", "en"),
        ("12345", "en"),
    ],
)
def test_guess_language_says_zh_when_chinese_dominates(text: str, language: str) -> None:
    assert guess_language(text) == language


def test_pinyin_is_toneless_and_joined() -> None:
    assert pinyin("社保") == "shebao"
    assert pinyin("身份证") == "shenfenzheng"
    assert pinyin("绿") == "lv"
    assert pinyin("a社") == "ashe"


def test_synonyms_map_to_the_first_term_of_their_group() -> None:
    synonyms = SynonymMap([["社会保险", "社保"], ["identity card", "ID card"]])
    assert synonyms.apply(normalise("社保卡丢了")) == "社会保险卡丢了"
    assert synonyms.apply(normalise("Lost my ID-card")) == "lost my identity card"


def test_synonyms_apply_to_every_form_the_index_folds_alike() -> None:
    synonyms = SynonymMap([["ID card", "identity card"], ["社保", "社会保险"]])
    for question in ("ID cards", "identity cards", "Identity Card's", "identity card"):
        assert synonyms.apply(normalise(f"lost my {question} twice")) == "lost my id card twice", question
    assert synonyms.apply(normalise("社会保险卡 identity cards")) == "社保卡 id card"
    plural = SynonymMap([["ID cards", "identity cards"]])
    assert plural.apply("renew identity card") == "renew id cards"


def test_synonyms_leave_other_words_as_written() -> None:
    synonyms = SynonymMap([["ID card", "identity card"]])
    assert synonyms.apply("cards and identities of ids") == "cards and identities of ids"
    assert synonyms.apply("the identity cards 身份证 cards") == "the id card 身份证 cards"


def test_synonyms_match_whole_words_only() -> None:
    synonyms = SynonymMap([["children", "kids"]])
    assert synonyms.apply("kids vaccine") == "children vaccine"
    assert synonyms.apply("kidstuff skids") == "kidstuff skids"


def test_synonyms_prefer_the_longest_match() -> None:
    synonyms = SynonymMap([["driving licence", "licence"], ["international driving permit", "idp"]])
    assert synonyms.apply("idp") == "international driving permit"
    assert synonyms.apply("my licence") == "my driving licence"
    synonyms = SynonymMap([["社会保障卡", "社保卡"], ["社会保险", "社保"]])
    assert synonyms.apply("社保卡和社保") == "社会保障卡和社会保险"


def test_groups_that_share_a_term_are_one_group() -> None:
    chain = SynonymMap([["社保", "社会保险"], ["社会保险", "social insurance"]])
    assert {chain.apply(t) for t in ("社保", "社会保险", "social insurance")} == {"社保"}
    loop = SynonymMap([["x ray", "xray"], ["xray", "x ray"]])
    assert {loop.apply(t) for t in ("x ray", "xray")} == {"x ray"}


@pytest.mark.parametrize(
    "groups",
    [
        [["driving licence", "licence"]],
        [["医疗保险卡", "医保卡"], ["医保", "医疗保险"]],
        [["social insurance", "social security"], ["social security number", "ssn"]],
    ],
)
def test_a_canonical_term_is_not_rewritten_from_inside(groups: list[list[str]]) -> None:
    synonyms = SynonymMap(groups)
    for group in groups:
        canonical = normalise(group[0])
        assert {synonyms.apply(normalise(term)) for term in group} == {canonical}
        assert synonyms.apply(canonical) == canonical


def test_latin_synonyms_match_next_to_chinese() -> None:
    assert SynonymMap([["etc", "etc tag"]]).apply("etc tag办理") == "etc办理"
    assert SynonymMap([["etc card", "etc"]]).apply("etc办理") == "etc card办理"


def test_empty_and_odd_synonym_groups_are_ignored() -> None:
    synonyms = SynonymMap([[], ["only"], ["", "   "], ["same", "SAME"]])
    assert len(synonyms) == 0
    assert synonyms.apply("only same") == "only same"
