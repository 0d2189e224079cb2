"""The D2L corpus measured: `python benchmarks/corpus.py` (from the repository root).

Runs every case of tests/corpus/d2l through `symgrad.compare` and prints how many symgrad reads
(a verdict, no refusal), how many it gets right (the verdict the mathematics and torch give; for a
case whose function does not return, a refusal naming the line), how many of the refusals are a
symgrad sentence naming the book's line, the same per chapter, and each refused case with the
first line of its refusal. The target (issue 22) is at least 95% read and right.

    python benchmarks/corpus.py           the table and the refusals
    python benchmarks/corpus.py --json    the same as JSON (one object per case)
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this script's own folder would shadow the namespace package tests/corpus with this file
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from corpus.d2l.cases import CASES  # noqa: E402
from corpus.d2l.run import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    outcomes = [run(c) for c in CASES]
    if args.json:
        print(json.dumps([{"id": o.case.id, "chapter": o.case.chapter, "expect": o.case.expect,
                           "cause": o.cause, "read": o.read, "right": o.right,
                           "refusal": o.first_line or None} for o in outcomes], indent=1))
        return
    chapters = sorted({c.chapter for c in CASES}, key=[c.chapter for c in CASES].index)
    rows = [("all", outcomes)] + [(ch, [o for o in outcomes if o.case.chapter == ch]) for ch in chapters]
    head = f"{'chapter':32s} {'cases':>5s} {'read':>11s} {'right':>11s} {'refused':>7s} {'naming line':>11s}"
    print(head)
    print("-" * len(head))
    for name, group in rows:
        n = len(group)
        read = sum(o.read for o in group)
        right = sum(o.right for o in group)
        refused = [o for o in group if not o.read]
        naming = sum(o.refusal_names_line for o in refused)
        print(f"{name:32s} {n:5d} {read:4d} ({100 * read / n:3.0f}%) {right:4d} ({100 * right / n:3.0f}%) "
              f"{len(refused):7d} {naming:11d}")
    wrong = [o for o in outcomes if o.read and not o.right]
    if wrong:
        print("\nread but not right (verdict, expected):")
        for o in wrong:
            print(f"  {o.case.id}: {o.cause}, expected {o.case.expect}")
    print("\nrefused (first line of the refusal):")
    for o in outcomes:
        if not o.read:
            kind = type(o.error).__name__
            mark = "" if o.case.expect != "refused" else "  [expected: the function does not return]"
            print(f"  {o.case.id} ({kind}): {o.first_line}{mark}")


if __name__ == "__main__":
    main()
