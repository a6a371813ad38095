"""`make bench`: run every benchmark under bench/ and print one table of figures, ratios and goals.

Each benchmark module exposes `run(quick: bool) -> list[dict]` with rows
{"bench", "metric", "value", "unit", "goal"}; `python -m bench.<name>` runs one alone.
Usage: python -m bench.run_all [--quick] [name ...]
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHES = ("sasp", "preprocess", "augment", "train", "evaluate", "batched_decode", "real_size_step", "real_size_eval")


def _table(rows: list[dict]) -> str:
    cols = ("bench", "metric", "value", "unit", "goal")
    cells = [[r["bench"], r["metric"], f"{r['value']:.4g}" if isinstance(r["value"], float) else str(r["value"]),
              r.get("unit", ""), r.get("goal", "")] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)] if cells else [len(c) for c in cols]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*cols), fmt.format(*("-" * w for w in widths)), *(fmt.format(*row) for row in cells)])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")] or list(BENCHES)
    rows: list[dict] = []
    failed = []
    for name in names:
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as err:
            print(f"[bench] {name}: not available ({err})", flush=True)
            continue
        print(f"[bench] running {name} (quick={quick}) ...", flush=True)
        try:
            rows += module.run(quick=quick)
        except Exception as err:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"[bench] {name} FAILED: {type(err).__name__}: {err}", flush=True)
        print(f"[bench] {name} took {time.perf_counter() - start:.1f}s", flush=True)
    print()
    print(_table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
