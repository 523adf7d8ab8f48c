"""Caption checks: catch rate per problem code and false-positive rates.

    python bench/checks_bench.py [--no-demo] [--seeds 4]

- adversarial corpus (tests/adversarial_captions.yaml): for every wrong caption, whether
  `check_caption` raises the code the caption carries (caught), raises something else only
  (flagged, wrong code) or nothing (missed); per code and in total;
- false positives: correct captions of the corpus (careful free text and the composer's output for
  the same records) that raise any code;
- false positives on the demo: the grounded composer's captions of every real record built from
  the bundled sources (production stage functions, no knowledge retrieval), `--seeds` wordings each;
- cost: checking time per caption as a ratio to writing it with the composer (the bare baseline).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from adversarial_corpus import load_corpus  # noqa: E402
from medtrinity_assets.captions import check_caption, compose_caption  # noqa: E402


def corpus_report() -> tuple[int, int, int]:
    records, cases = load_corpus()
    per_code: dict[str, Counter] = defaultdict(Counter)
    fp = []
    n_correct = 0
    for c in cases:
        problems = check_caption(c.text, c.sections, records[c.record])
        if c.expect == "none":
            n_correct += 1
            if problems:
                fp.append((c.id, problems))
            continue
        outcome = "caught" if c.expect in problems else "wrong_code" if problems else "missed"
        per_code[c.expect][outcome] += 1
        if outcome != "caught":
            why = f" (known: {c.known_miss})" if c.known_miss else ""
            print(f"  {outcome}: {c.id} expected {c.expect}, got {problems}{why}")
    print(f"{'problem code':<26}{'captions':>9}{'caught':>8}{'wrong code':>11}{'missed':>8}{'rate':>8}")
    total = Counter()
    for code in sorted(per_code):
        n = sum(per_code[code].values())
        total.update(per_code[code])
        print(f"{code:<26}{n:>9}{per_code[code]['caught']:>8}{per_code[code]['wrong_code']:>11}{per_code[code]['missed']:>8}{per_code[code]['caught'] / n:>8.0%}")
    n_wrong = sum(total.values())
    print(f"{'all':<26}{n_wrong:>9}{total['caught']:>8}{total['wrong_code']:>11}{total['missed']:>8}{total['caught'] / n_wrong:>8.0%}")
    print(f"corpus correct captions: {len(fp)} of {n_correct} flagged (false-positive rate {len(fp) / max(n_correct, 1):.1%})")
    for cid, problems in fp:
        print(f"  false positive: {cid}: {problems}")
    return total["caught"], n_wrong, len(fp)


def demo_report(seeds: int) -> None:
    from demo_records import demo_facts

    t0 = time.perf_counter()
    records = demo_facts()
    print(f"demo records: {len(records)} from {len({d for d, _, _ in records})} sources (built in {time.perf_counter() - t0:.0f} s)")
    flagged: Counter = Counter()
    by_source: Counter = Counter()
    n = 0
    t_compose = t_check = 0.0
    examples = []
    for dataset, roi_id, facts in records:
        for seed in [roi_id, *range(seeds - 1)]:
            a = time.perf_counter()
            text, sections = compose_caption(facts, seed=seed)
            b = time.perf_counter()
            problems = check_caption(text, sections, facts)
            t_compose += b - a
            t_check += time.perf_counter() - b
            n += 1
            if problems:
                by_source[dataset] += 1
                flagged.update(problems)
                if len(examples) < 5:
                    examples.append((dataset, roi_id, problems, text))
    n_flagged = sum(by_source.values())
    print(f"demo composer captions: {n_flagged} of {n} flagged (false-positive rate {n_flagged / max(n, 1):.1%}); codes {dict(flagged)}")
    for dataset, roi_id, problems, text in examples:
        print(f"  false positive: {dataset} {roi_id}: {problems}\n    {text[:300]}")
    print(f"check time / compose time per caption: {t_check / max(t_compose, 1e-9):.2f} ({1000 * t_check / n:.2f} ms per check)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-demo", action="store_true", help="skip the demo records (they take ~30 s to build)")
    ap.add_argument("--seeds", type=int, default=4, help="composer wordings per demo record")
    args = ap.parse_args()
    caught, n_wrong, _ = corpus_report()
    print(f"catch rate: {caught}/{n_wrong} = {caught / n_wrong:.1%} (goal >= 95%)")
    if not args.no_demo:
        demo_report(args.seeds)


if __name__ == "__main__":
    main()
