"""Matcher benchmark: index build time, query latency and memory at 1k, 10k and 50k entries.

Run: ``.venv/bin/python benchmarks/bench_matcher.py [--sizes 1000 10000 50000] [--quality]``.
The knowledge bases are the public distractor set (../shared/eval/distractors.jsonl) plus the
bundled sample KB, replicated with new ids and slight perturbations to reach each size.
``--quality`` also prints the evaluation-set figures and 2-fold and 5-fold cross-validated estimates
of the calibrated thresholds (what docs/PERFORMANCE.md reports).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

from knowledge.entry import Entry, KnowledgeBase
from knowledge.evaluate import (
    Outcome,
    calibrate,
    evaluate,
    load_cases,
    percentile,
    redecide,
    render_table,
    run_cases,
    shares,
)
from knowledge.formats import load_paths
from knowledge.matcher import Matcher, Thresholds
from knowledge.normalise import normalise

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
SAMPLE = ROOT / "knowledge" / "sample"

QUESTIONS = {
    "en short": ["Are mRNA vaccines safe?", "lost my ID card", "how much does it cost", "mask rules"],
    "en long": [
        "My mother is 67 and she lost her bus pass last week while shopping, how do we get a new one "
        "and does she have to pay for the replacement card or is it free for older people?",
        "If I already had COVID in the past six months, should I still get vaccinated, and how long "
        "should I wait after recovering before booking the first dose at a county site?",
    ],
    "zh short": ["身份证丢了", "公积金怎么提取", "ETC怎么办理", "社保卡激活"],
    "zh long": [
        "我社保卡上周买菜的时候弄丢了，请问现在补办一张要去哪里，要带什么材料，大概要多久才能拿到新卡",
        "上个月刚在海滨签了二手房的购房合同，公积金账户里的钱能全部取出来吗，需要准备哪些材料去哪里办理",
    ],
    "10k chars": ["为什么 " * 1250 + "how do I " * 600],
}


def base_entries() -> list[Entry]:
    """Distractors plus the sample knowledge base."""
    kb = load_paths([EVAL / "distractors.jsonl", SAMPLE])
    return list(kb.entries)


def perturbed(entry: Entry, copy: int, rng: random.Random) -> Entry:
    """A copy of ``entry`` with a new id and one word of each question dropped or swapped."""
    return entry.replace(
        id=f"{entry.id}~{copy}",
        question={lang: _perturb(text, rng) for lang, text in entry.question.items()},
        alternatives={lang: [_perturb(t, rng) for t in texts] for lang, texts in entry.alternatives.items()},
        answer={lang: _perturb(text, rng) for lang, text in entry.answer.items()},
    )


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
        del words[rng.randrange(len(words))]
        return " ".join(words)
    if len(text) > 4:  # Chinese: no spaces, drop one character
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    return text


def knowledge_base(size: int, base: Sequence[Entry], seed: int = 7) -> KnowledgeBase:
    """``size`` entries: the base set, then perturbed copies of it."""
    rng = random.Random(seed)
    entries = list(base[:size])
    copy = 1
    while len(entries) < size:
        entries += [perturbed(e, copy, rng) for e in base[: size - len(entries)]]
        copy += 1
    return KnowledgeBase(entries=entries)


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def build_figures(kb: KnowledgeBase) -> tuple[Matcher, float, float, float]:
    """The matcher, its build time (wall and CPU, s) and the traced memory peak of a second build (MiB)."""
    gc.collect()
    holder: list[Matcher] = []
    start_cpu = time.thread_time()
    seconds = timed(lambda: holder.append(Matcher(kb)))
    cpu_seconds = time.thread_time() - start_cpu
    tracemalloc.start()
    Matcher(kb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return holder[0], seconds, cpu_seconds, peak / 2**20


def latencies(matcher: Matcher, questions: Sequence[str], rounds: int) -> tuple[float, float, float]:
    """p50 and p99 wall-clock latency and p99 CPU time (ms) of ``rounds`` passes over ``questions``.

    CPU time (this thread's) leaves out time the process waited for a core: on a shared
    machine it is what the matcher costs; wall-clock time is what a citizen waits.
    """
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for question in questions:
            start, start_cpu = time.perf_counter(), time.thread_time()
            matcher.match(question)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
    wall.sort()
    cpu.sort()
    return percentile(wall, 50), percentile(wall, 99), percentile(cpu, 99)


def bench(sizes: Sequence[int], rounds: int) -> None:
    """Print the performance table."""
    print(f"python {platform.python_version()}, {platform.machine()}, {platform.processor() or 'cpu'}")
    base = base_entries()
    Matcher(KnowledgeBase(entries=base[:50])).match("warm up 预热")  # loads OpenCC, pinyin, stemmer
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = f"{'entries':>8} {'build s':>8} {'cpu s':>6} {'peak MiB':>9} " + "".join(
        f"{k:>22}" for k in QUESTIONS
    )
    print(header + "\n" + " " * 34 + "   p50 / p99 (cpu p99)" * len(QUESTIONS))
    for size in sizes:
        matcher, seconds, cpu_seconds, peak = build_figures(knowledge_base(size, base))
        cells = []
        for questions in QUESTIONS.values():
            p50, p99, cpu99 = latencies(matcher, questions, rounds)
            cells.append(f"{p50:6.2f} /{p99:6.2f} ({cpu99:5.2f})")
        print(
            f"{size:>8} {seconds:>8.2f} {cpu_seconds:>6.2f} {peak:>9.1f} "
            + "".join(f"{c:>22}" for c in cells)
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _entries_from_eval(path: Path) -> list[Entry]:
    return list(load_paths([path]).entries)


def _clean(outcomes: list[Outcome], kb: KnowledgeBase) -> list[Outcome]:
    """Drop no-answer cases that are verbatim questions of the knowledge base (mislabelled)."""
    questions = {normalise(q) for e in kb.entries for q in e.question.values()}
    return [o for o in outcomes if o.case.answerable or normalise(o.case.query) not in questions]


def quality() -> None:
    """Print evaluation-set figures and a cross-validated estimate of the thresholds."""
    distractors = _entries_from_eval(EVAL / "distractors.jsonl")
    sets = {
        "en": (_entries_from_eval(EVAL / "kb.jsonl"), EVAL / "dev.jsonl"),
        "zh": (_entries_from_eval(EVAL / "zh" / "kb.jsonl"), EVAL / "zh" / "dev.jsonl"),
    }
    outcomes: dict[str, list[Outcome]] = {}
    for name, (entries, cases_path) in sets.items():
        cases = load_cases(cases_path)
        for label, kb in (
            (name, KnowledgeBase(entries=entries)),
            (f"{name}+dis", KnowledgeBase(entries=entries + distractors)),
        ):
            matcher = Matcher(kb)
            print(f"\n== {label}: {len(kb.entries)} entries\n{render_table(evaluate(matcher, cases))}")
            outcomes[label] = _clean(run_cases(matcher, cases), kb)
    sample = evaluate(
        Matcher(load_paths([SAMPLE])), load_cases(ROOT / "tests/knowledge/data/sample_questions.jsonl")
    )
    print(f"\n== sample KB\n{render_table(sample)}")
    cross_validate(outcomes)


def cross_validate(outcomes: dict[str, list[Outcome]]) -> None:
    """Calibrate on part of the dev questions, report decisions on the rest (2-fold and 5-fold)."""
    print("\n== thresholds: calibrated on all dev, and k-fold cross-validation (held-out parts)")
    calibration = {k: outcomes[k] for k in ("en", "zh")}
    print("all dev ->", calibrate(calibration), " defaults:", Thresholds())
    for fold in (0, 1):
        train = {k: [o for i, o in enumerate(v) if i % 2 == fold] for k, v in calibration.items()}
        limits = calibrate(train)
        print(f"fold {fold}: {limits}")
        for name, items in outcomes.items():
            held_out = [o for i, o in enumerate(items) if i % 2 != fold]
            _print_decisions(f"  {name:7s}", held_out, limits)
    print("5-fold, held-out decisions pooled over the folds:")
    for name, names in pooled_held_out(outcomes, calibration, 5).items():
        _print_shares(f"  {name:7s}", names)
    print("defaults on all dev:")
    for name, items in outcomes.items():
        _print_decisions(f"  {name:7s}", items, Thresholds())


def pooled_held_out(
    outcomes: dict[str, list[Outcome]], calibration: dict[str, list[Outcome]], folds: int
) -> dict[str, tuple[list[str], list[str]]]:
    """Outcome names (answerable, no-answer) of every case, decided by thresholds calibrated without it."""
    pooled: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in outcomes}
    for fold in range(folds):
        train = {k: [o for i, o in enumerate(v) if i % folds != fold] for k, v in calibration.items()}
        limits = calibrate(train)
        for name, items in outcomes.items():
            for o in (o for i, o in enumerate(items) if i % folds == fold):
                pooled[name][0 if o.case.answerable else 1].append(redecide(o, limits))
    return pooled


def _print_shares(label: str, names: tuple[list[str], list[str]]) -> None:
    a, n = shares(names[0], True), shares(names[1], False)
    print(
        f"{label} answerable ok {a.success:.3f} (answered {a.answered_correct:.3f},"
        f" wrong {a.wrong_answer:.3f})  no-answer ok {n.success:.3f} (refused {n.refused:.3f})"
    )


def _print_decisions(label: str, items: list[Outcome], limits: Thresholds) -> None:
    answerable = [redecide(o, limits) for o in items if o.case.answerable]
    _print_shares(label, (answerable, [redecide(o, limits) for o in items if not o.case.answerable]))


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--rounds", type=int, default=25, help="passes over each question list")
    parser.add_argument("--quality", action="store_true", help="also print evaluation-set figures")
    args = parser.parse_args()
    bench(args.sizes, args.rounds)
    if args.quality:
        quality()


if __name__ == "__main__":
    main()
