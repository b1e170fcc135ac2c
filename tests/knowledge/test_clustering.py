"""Clustering unanswered questions: same need together, languages apart, largest first, deterministic."""

from __future__ import annotations

import random

from knowledge.clustering import Asked, cluster_questions, similarity_key

POOL = [
    "When does the swimming pool open?",
    "swimming pool opening hours",
    "What time does the public pool open",
    "what time is the pool open on sunday",
    "When does the swimming pool open",
]
DOGS = ["can I bring my dog to the beach", "dogs allowed on beach?"]
FINE = ["how do i pay my parking fine"]
SORTING = ["垃圾分类怎么做", "垃圾怎么分类", "垃圾分类规定是什么", "垃圾分類怎麼做"]
PASSPORT = ["哪里可以办护照", "护照在哪办", "护照办理地点"]
BEACH_ZH = ["狗可以带去海滩吗"]


def asked(texts: list[str]) -> list[Asked]:
    return [Asked(text, citizen_id=i) for i, text in enumerate(texts)]


def groups(texts: list[str]) -> list[set[str]]:
    return [{q.text for q in cluster.questions} for cluster in cluster_questions(asked(texts))]


def test_english_questions_about_the_same_need_form_one_cluster() -> None:
    assert groups(POOL + DOGS + FINE) == [set(POOL), set(DOGS), set(FINE)]


def test_chinese_questions_cluster_by_characters_and_traditional_script_joins_simplified() -> None:
    assert groups(SORTING + PASSPORT + BEACH_ZH) == [set(SORTING), set(PASSPORT), set(BEACH_ZH)]


def test_languages_never_share_a_cluster() -> None:
    clusters = cluster_questions(asked([*DOGS, *BEACH_ZH, "dog beach", "狗 海滩"]))
    for cluster in clusters:
        assert len({q.text.isascii() for q in cluster.questions}) == 1
    assert {c.language for c in clusters} == {"en", "zh"}


def test_largest_cluster_comes_first_with_counts_citizens_and_examples() -> None:
    texts = [*FINE, *POOL, *DOGS]
    again = [
        Asked("swimming pool opening hours", citizen_id=1),
        Asked("Swimming pool opening hours!", citizen_id=2),
    ]
    first = cluster_questions([*asked(texts), *again])[0]
    assert (first.language, first.count, first.citizens) == ("en", 7, 5)
    # Spellings that differ in case and punctuation count as one wording.
    assert first.examples(2) == ["swimming pool opening hours", "When does the swimming pool open"]


def test_the_result_does_not_depend_on_the_order_of_the_questions() -> None:
    texts = POOL + DOGS + FINE + SORTING + PASSPORT + BEACH_ZH
    expected = [[q.text for q in c.questions] for c in cluster_questions(asked(texts))]
    shuffled = list(asked(texts))
    random.Random(7).shuffle(shuffled)
    got = [sorted(q.text for q in c.questions) for c in cluster_questions(shuffled)]
    assert got == [sorted(group) for group in expected]


def test_questions_without_words_are_left_out() -> None:
    assert cluster_questions(asked(["🙂🙂🙂", "???", "", "   "])) == []


def test_nearest_entry_is_the_one_the_matcher_found_most_often() -> None:
    questions = [
        Asked("pool opening hours", nearest="sport-pool", nearest_score=0.41),
        Asked("swimming pool open", nearest="sport-pool", nearest_score=0.45),
        Asked("pool open sunday", nearest="parks-hours", nearest_score=0.5),
    ]
    [cluster] = cluster_questions(questions)
    assert cluster.nearest() == ("sport-pool", 0.45)
    assert cluster_questions([Asked("pool opening hours")])[0].nearest() is None


def test_similarity_key_keeps_content_words_only() -> None:
    assert similarity_key("when does the swimming pool open", "en") == "swim pool open"
    assert similarity_key("护照在哪办", "zh") == "护 照 在 哪 办"
    assert similarity_key("how do i", "en") == "how do i"
