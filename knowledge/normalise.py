"""Text normalisation and tokenisation for English and Chinese questions and entries.

The same pipeline runs over knowledge-base text and over citizens' questions, so whatever
it folds (width, case, script, punctuation, inflection) stops mattering for matching.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Protocol, cast

MAX_INPUT_CHARS = 1000
"""Input beyond this is cut before any work: no real question is longer, and work stays bounded."""

# Control characters become spaces; invisible format characters and lone surrogates go,
# so "co\u200bvid" stays one word.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")
_UNWANTED = re.compile(f"{_CONTROL.pattern}|{_INVISIBLE.pattern}")
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc\u0060\u00b4]")
_CONTRACTIONS = {
    "won't": "will not",
    "can't": "can not",
    "shan't": "shall not",
    "n't": " not",
    "'re": " are",
    "'ve": " have",
    "'ll": " will",
    "'m": " am",
    "'d": " would",
    "'s": "",
}
_CONTRACTION_RE = re.compile(r"\b(?:won't|can't|shan't)\b|(?<=\w)(?:n't|'re|'ve|'ll|'m|'d|'s)\b")
_WORDISH = re.compile(r"[\w&]+")
_ASCII_PUNCTUATION = str.maketrans(
    {c: " " for c in map(chr, range(0x21, 0x7F)) if not c.isalnum() and c != "&"}
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_RUNS = re.compile(f"([{_CJK}]+)|([^\\s{_CJK}]+)")
_LATIN_WORD = re.compile(f"[^\\s{_CJK}]+")

# Colloquial spellings with one standard form; typed by citizens, never by the entry writers.
_ZH_COLLOQUIAL = {"咋": "怎么", "啥": "什么", "哪儿": "哪里", "甚么": "什么"}
_ZH_COLLOQUIAL_RE = re.compile("|".join(sorted(_ZH_COLLOQUIAL, key=len, reverse=True)))

EN_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be been being
    both but by could did do does doing done during each else ever few for from further had
    has have having he her here hers him his i if in into is it its itself just
    let me might more most much must my myself nor now of off on once only or other
    our ours out over own please same shall she so some such than that the their theirs them
    then there these they this those through to too under until up upon us very was we were
    will with would yes yet you your yours hi hello thanks thank tell know""".split()  # noqa: SIM905 - a word list reads best as text
)
"""Function words: they say nothing about which entry answers. Question words (how, why,
when, which, who, where, what) and words that turn a question (not, no, can, should)
stay: they separate "how many doses" from "why two doses", "who should" from "who should not"."""

ZH_STOP_WORDS = frozenset(
    """请问 问一下 问下 想问 想知道 我想 麻烦 你好 您好 谢谢 怎么样 怎么 如何 怎样
    什么 为什么 是不是 能不能 可不可以 可以 能否 是否 一下 我们 你们 他们 自己 这个
    那个 就是 还是 还有 现在 已经 吗 呢 吧 啊 呀 嘛 哦 哈 了 的 我 你 您 他 她 它 和 或 也""".split()  # noqa: SIM905 - a word list reads best as text
)
"""Particles, pronouns and question words that appear in most Chinese questions."""
_ZH_STOP_RE = re.compile("|".join(sorted(ZH_STOP_WORDS, key=len, reverse=True)))


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


class _Stemmer(Protocol):
    def stemWord(self, word: str) -> str: ...  # PyStemmer's name


@lru_cache(maxsize=1)
def _t2s() -> _Converter:
    import opencc  # OpenCC has no type stubs; loaded once, on first Chinese text

    return cast(_Converter, opencc.OpenCC("t2s"))


@lru_cache(maxsize=1)
def _english_stemmer() -> _Stemmer:
    import Stemmer  # type: ignore[import-not-found]  # PyStemmer: Snowball in C, no type stubs

    return cast(_Stemmer, Stemmer.Stemmer("english"))


EN_EQUIVALENTS = """
child children kid kids youngster youngsters
young younger youngest youth
dose doses shot shots jab jabs injection injections
doctor doctors physician physicians gp
get gets getting got gotten receive receives received receiving obtain obtained
year years yearly annual annually
effective effectiveness efficacy efficacious
manufacturer manufacturers maker makers brand brands company companies producer
make makes made making
take takes took taken taking
give gives gave given giving
go goes went gone going
pay pays paid paying
lose loses lost losing
buy buys bought purchase purchased
begin begins began begun start starts started
pregnant pregnancy
sick ill illness sickness
danger dangerous risk risks risky
price cost costs fee fees
job jobs employment
home house houses
car cars vehicle vehicles
need needs require requires required requirement
allowed permitted
mandatory compulsory obligatory
""".strip()
"""General English paraphrases and irregular forms, one group a line: every word of a line is matched
as the first. Inflections a stemmer cannot see (children, made, paid) and everyday synonyms (kids,
jab, physician); nothing specific to one knowledge base, which has ``KnowledgeBase.synonyms`` for that."""


def _raw_stem(word: str) -> str:
    if len(word) <= 3 or not word.isascii() or not word.isalpha():
        return word
    return _english_stemmer().stemWord(word)


@lru_cache(maxsize=1)
def _equivalents() -> Mapping[str, str]:
    table: dict[str, str] = {}
    for line in EN_EQUIVALENTS.splitlines():
        words = line.split()
        for word in words[1:]:
            table.setdefault(_raw_stem(word), _raw_stem(words[0]))
    return table


@lru_cache(maxsize=65536)
def word_term(word: str) -> str:
    """The index term of a lower-case English word: its stem, with paraphrases folded ("kids" → "child")."""
    raw = _raw_stem(word)
    return _equivalents().get(raw, raw)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The English stem of a lower-case ``word`` ("vaccinated" → "vaccin"); other words unchanged."""
    return _raw_stem(word)


def normalise(text: str) -> str:
    """Fold ``text`` to the form both questions and entries are matched in; never raises."""
    if not isinstance(text, str) or not text:
        return ""
    text = text[:MAX_INPUT_CHARS]
    if _UNWANTED.search(text):
        text = _INVISIBLE.sub("", _CONTROL.sub(" ", text))
    if not text.isascii():  # before NFKC, which makes "´" a space and a combining accent
        text = _APOSTROPHES.sub("'", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    ascii_only = text.isascii()
    if not ascii_only and _CJK_CHAR.search(text):
        text = _t2s().convert(text)
        text = _ZH_COLLOQUIAL_RE.sub(lambda m: _ZH_COLLOQUIAL[m.group()], text)
    if "'" in text:
        text = _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS.get(m.group(), ""), text).replace("'", "")
    # Punctuation and spacing fold to single spaces; ASCII text, the common case, is done in C.
    words = text.translate(_ASCII_PUNCTUATION).split() if ascii_only else _WORDISH.findall(text)
    if "&" in text or "_" in text:
        words = _names_with_ampersand(words)
    return " ".join(words)


def _names_with_ampersand(words: list[str]) -> list[str]:
    """Keep "&" only inside names such as J&J or AT&T; underscores separate words."""
    kept = []
    for word in words:
        for part in word.split("_"):
            part = re.sub("&{2,}", "&", part).strip("&")
            if part:
                kept.append(part)
    return kept


def visible(text: str) -> bool:
    """Whether any character shows: not only spaces, controls, or format marks (zero-width, direction)."""
    return any(unicodedata.category(ch)[0] not in "CZ" for ch in text)


def is_cjk(char: str) -> bool:
    """Whether ``char`` (its first character) is a CJK ideograph."""
    code = ord(char[0]) if char else 0
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or (0x20000 <= code <= 0x2FFFF)
    )


def has_cjk(text: str) -> bool:
    """Whether ``text`` contains a CJK ideograph."""
    return not text.isascii() and _CJK_CHAR.search(text) is not None


def cjk_runs(normalised: str) -> Iterator[tuple[bool, str]]:
    """Split normalised text into (is_cjk, run) pieces: Chinese runs and single other words."""
    if not has_cjk(normalised):
        for word in normalised.split():
            yield False, word
        return
    for match in _RUNS.finditer(normalised):
        cjk, other = match.groups()
        yield (True, cjk) if cjk else (False, other)


def content_runs(normalised: str) -> Iterator[tuple[bool, str]]:
    """Like :func:`cjk_runs`, with stop words left out (Chinese runs are split where one was)."""
    for cjk, run in cjk_runs(normalised):
        if not cjk:
            if run not in EN_STOP_WORDS:
                yield False, run
            continue
        for piece in _ZH_STOP_RE.split(run):
            if piece:
                yield True, piece


def bigrams(run: str) -> Iterator[str]:
    """Overlapping character bigrams of a Chinese run; a one-character run is its own term."""
    if len(run) == 1:
        yield run
        return
    for i in range(len(run) - 1):
        yield run[i : i + 2]


def terms_of(runs: Iterable[tuple[bool, str]]) -> Iterator[str]:
    """Index terms of content runs: stems for words, character bigrams for Chinese."""
    for cjk, run in runs:
        if cjk:
            yield from bigrams(run)
        else:
            yield word_term(run)


def tokens(text: str) -> list[str]:
    """Index terms of ``text`` in order: stemmed words and Chinese character bigrams, no stop words.

    "ETC怎么办理" gives ["etc", "办理"]; "Are vaccines safe?" gives ["vaccin", "safe"].
    """
    return list(terms_of(content_runs(normalise(text))))


def guess_language(text: str) -> str:
    """Say "zh" when Chinese characters outnumber other words in ``text``, else "en"."""
    normalised = normalise(text)
    ideographs = len(_CJK_CHAR.findall(normalised))
    if ideographs == 0:
        return "en"
    words = len(_LATIN_WORD.findall(normalised))
    return "zh" if ideographs >= words else "en"


@lru_cache(maxsize=1)
def _pinyin_table() -> Mapping[int, str]:
    from pypinyin.pinyin_dict import pinyin_dict  # 40k characters; loaded on first Chinese text

    return cast(Mapping[int, str], pinyin_dict)


@lru_cache(maxsize=65536)
def _syllable(char: str) -> str:
    readings = _pinyin_table().get(ord(char))
    if readings is None:
        return char
    toned = unicodedata.normalize("NFD", readings.split(",")[0]).replace("u\u0308", "v")
    return "".join(c for c in toned if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def pinyin(text: str) -> str:
    """Toneless pinyin of the Chinese characters in ``text``, run together ("社保" → "shebao").

    Heteronyms take their most common reading; other characters are kept as they are.
    """
    return "".join(_syllable(char) if is_cjk(char) else char for char in text)


_LATIN_WORD_CHAR = f"[^\\W{_CJK}]"
_LATIN_WORDS = re.compile(f"{_LATIN_WORD_CHAR}+")
_LATIN_WORDS_SPLIT = re.compile(f"({_LATIN_WORD_CHAR}+)")


def _bounded(form: str) -> str:
    """A pattern for ``form`` that does not match inside a longer word of letters or digits."""
    before = "" if is_cjk(form[0]) else f"(?<!{_LATIN_WORD_CHAR})"
    after = "" if is_cjk(form[-1]) else f"(?!{_LATIN_WORD_CHAR})"
    return before + re.escape(form) + after


class SynonymMap:
    """Rewrites every term of a synonym group to the group's canonical (first) term, longest first.

    Terms match in the forms the index folds English words to (:func:`word_term`), so ``ID card = identity
    card`` also rewrites "identity cards" and "ID cards"; the words around a match stay as written.
    Groups that share a term are one group, whose canonical term is that of the first: staff who write
    ``社保 = 社会保险`` and ``社会保险 = social insurance`` mean all three, and rewriting term by term
    would leave "social insurance" at "社会保险" while "社会保险" becomes "社保".
    """

    def __init__(self, groups: Sequence[Sequence[str]] = ()) -> None:
        written = ([term for term in dict.fromkeys(map(normalise, group)) if term] for group in groups)
        synonymous = [terms for terms in written if len(terms) > 1]
        self._spelling: dict[str, str] = {}
        """One spelling of each folded word in the groups, which every word folding to it is read as."""
        for term in itertools.chain.from_iterable(synonymous):
            for word in _LATIN_WORDS.findall(term):
                self._spelling.setdefault(word_term(word), word)
        merged = _merge([self._fold(term) for term in terms] for terms in synonymous)
        canonical = {self._fold(terms[0]): terms[0] for terms in reversed(synonymous)}
        # Canonical terms stand for themselves, so that a shorter term inside one is not rewritten:
        # with "driving licence = licence", "driving licence" stays as it is, not "driving driving licence".
        self._targets = {form: canonical[forms[0]] for forms in merged for form in forms}
        self._rewritten = {term for term in itertools.chain.from_iterable(synonymous)
                           if self._targets[self._fold(term)] != term}
        self._pattern = self._compile(sorted(self._targets, key=len, reverse=True))

    def _fold(self, normalised: str) -> str:
        """``normalised`` with each English word in the spelling the groups have for its folded form."""
        return _LATIN_WORDS.sub(lambda m: self._spelling.get(word_term(m.group()), m.group()), normalised)

    @staticmethod
    def _compile(forms: list[str]) -> re.Pattern[str] | None:
        # Chinese has no word boundaries to respect; letters and digits do ("id card" in "paid cards").
        if not forms:
            return None
        parts = [_bounded(form) for form in forms]
        return re.compile("|".join(parts))

    def __len__(self) -> int:
        return len(self._rewritten)

    def apply(self, normalised: str) -> str:
        """``normalised`` with every synonym replaced by its canonical term."""
        if self._pattern is None:
            return normalised
        parts = _LATIN_WORDS_SPLIT.split(normalised)  # other text, then a word, other text, a word, …
        folded = [self._spelling.get(word_term(part), part) if i % 2 else part
                  for i, part in enumerate(parts)]
        if folded == parts:
            return self._pattern.sub(lambda m: self._targets[m.group()], normalised)
        # A match starts and ends where a word does, or inside other text: both are found part by part.
        written_at = list(itertools.accumulate(map(len, parts), initial=0))
        folded_at = list(itertools.accumulate(map(len, folded), initial=0))

        def written(offset: int) -> int:
            part = bisect.bisect_right(folded_at, offset) - 1
            return written_at[part] + offset - folded_at[part]

        pieces: list[str] = []
        done = 0
        for match in self._pattern.finditer("".join(folded)):
            pieces += [normalised[done : written(match.start())], self._targets[match.group()]]
            done = written(match.end())
        return "".join(pieces) + normalised[done:]


def _merge(groups: Iterable[list[str]]) -> list[list[str]]:
    """Distinct non-empty terms of each group, in order; a group sharing a term joins the earliest such."""
    merged: list[list[str]] = []
    home: dict[str, int] = {}
    for group in groups:
        terms = [term for term in dict.fromkeys(group) if term]
        joined = sorted({home[term] for term in terms if term in home})
        if not joined:
            joined = [len(merged)]
            merged.append([])
        first = merged[joined[0]]
        for other in joined[1:]:  # this group bridges two earlier ones
            first += [term for term in merged[other] if term not in first]
            merged[other] = []
        first += [term for term in terms if term not in first]
        home.update(dict.fromkeys(first, joined[0]))
    return [terms for terms in merged if terms]
