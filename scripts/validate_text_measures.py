"""Per-dimension precision, recall and F1 of the text-side measures on the labelled validation set.

    python scripts/validate_text_measures.py [--data tests/evaluation/data/text_validation.jsonl] [--errors]

The set (tests/evaluation/data/README.md) was written apart from the story pool and labelled strictly: a
dimension counts only where the story conveys it through something visible. A dimension is predicted
where the measurer's confidence reaches COVERED (0.5).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from storytelling.evaluation.dimensions import DIMENSIONS
from storytelling.evaluation.embedder import SentenceEmbedder
from storytelling.evaluation.text_measures import COVERED, TextMeasurer

DATA = Path(__file__).resolve().parents[1] / "tests" / "evaluation" / "data" / "text_validation.jsonl"


def scores(
    rows: list[dict], measurer: TextMeasurer
) -> tuple[dict[str, tuple[float, float, float]], list[str]]:
    """(precision, recall, F1) per dimension, and the misses as readable lines."""
    counts = {d.value: [0, 0, 0] for d in DIMENSIONS}  # true positive, false positive, false negative
    errors = []
    for row in rows:
        found = {s.dimension.value for s in measurer.measure(row["story"]).dimensions if s.score >= COVERED}
        labelled = set(row["dimensions"])
        for d in counts:
            tp, fp, fn = (
                d in found and d in labelled,
                d in found and d not in labelled,
                d in labelled and d not in found,
            )
            counts[d][0] += tp
            counts[d][1] += fp
            counts[d][2] += fn
            if fp or fn:
                errors.append(f"{row['id']} {'FP' if fp else 'FN'} {d}: {row['story'][:90]}")
    result = {}
    for d, (tp, fp, fn) in counts.items():
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[d] = (precision, recall, f1)
    return result, errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--errors", action="store_true", help="also list every false positive and negative")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    measurer = TextMeasurer(SentenceEmbedder())
    result, errors = scores(rows, measurer)
    print(f"text-side measures ({measurer.method}) on {len(rows)} stories of {args.data.name}")
    print(f"{'dimension':<28} {'precision':>9} {'recall':>7} {'F1':>6}")
    for d, (p, r, f) in result.items():
        print(f"{d:<28} {p:>9.2f} {r:>7.2f} {f:>6.2f}")
    macro = sum(f for _, _, f in result.values()) / len(result)
    print(f"{'macro F1':<28} {'':>9} {'':>7} {macro:>6.2f}")
    if args.errors:
        print("\n".join(errors))


if __name__ == "__main__":
    main()
