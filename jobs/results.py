"""Print an evaluation's summary table, or the deltas between two evaluations.

    python -m jobs.results runs/eval-a                 # summary (metrics in %)
    python -m jobs.results runs/eval-a runs/eval-b     # both summaries, then B - A in percentage points
    python -m jobs.results runs/eval-a runs/eval-b --allow-mixed-protocols   # compare across protocols anyway
"""

from __future__ import annotations

import sys

from pipelines.results import compare, format_compare, format_summary, load


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    mixed = "--allow-mixed-protocols" in args
    args = [a for a in args if a != "--allow-mixed-protocols"]
    if len(args) not in (1, 2):
        raise SystemExit("usage: python -m jobs.results <out> [<out2>] [--allow-mixed-protocols]")
    try:
        for out in args:
            summary, queries = load(out)
            print(f"== {out}  (run {summary['run_id'].iloc[0]}, {len(queries)} query rows)")
            print(format_summary(summary))
        if len(args) == 2:
            print(f"== delta: {args[1]} - {args[0]} (percentage points)")
            print(format_compare(compare(args[0], args[1], allow_mixed_protocols=mixed)))
    except ValueError as err:
        raise SystemExit(f"results: {err}") from err


if __name__ == "__main__":
    main()
