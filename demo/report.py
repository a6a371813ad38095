"""The demo's comparison tables: the all-objects baseline, the untrained and the trained model, per query type.

Everything is computed from the per-query Parquet rows with `pipelines.evaluate.metrics.summarize`, so the figures
equal what a user gets from `pipelines.results.load(...)` and pandas.
"""

from __future__ import annotations

import pandas as pd

from pipelines.data.templates import SEG_TOKEN
from pipelines.evaluate.metrics import GENERATE, summarize
from schemas.results import SUMMARY_SCHEMA

BY_TYPE = ("dataset", "split", "query_type")
"""Grouping of every demo table: one row per query type of each evaluated split."""
BY_EDIT = ("dataset", "split", "edit")
"""Grouping of the false-premise table: one row per rewritten element (object | attribute | relation)."""


def per_query_type(queries: pd.DataFrame) -> pd.DataFrame:
    """Summary columns per (dataset, split, query_type), plus an "all" row per (dataset, split)."""
    return _with_all_row(queries.assign(query_type=queries["query_type"].replace("", "untyped")), BY_TYPE)


def false_premises_by_edit(queries: pd.DataFrame) -> pd.DataFrame:
    """How often the model refuses a false premise, per (dataset, split, edit), plus an "all" row per split.

    Only generation-mode false premises count (error rows excluded), so `see` here is the refusal rate as See counts
    it: no [SEG] generated, or an empty mask from the [SEG] that was (../shared/spec/metrics.md). `said_no_seg` is
    the share refused in words, with no [SEG] in the generated text; the rest of `see` are empty masks. `edit` names
    what the rewrite changed (schemas.sample.EDIT_TYPES); "unknown" when the source did not record it.

    Returns:
        Columns BY_EDIT, n, see, said_no_seg, say_mentions_gt, say_similarity; sorted by BY_EDIT.
    """
    rows = queries[(queries["error"] == "") & (queries["mode"] == GENERATE) & ~queries["gt_present"]]
    rows = _with_all_group(rows.assign(edit=rows["edit"].replace("", "unknown"),
                                       said_no_seg=~rows["generated_text"].str.contains(SEG_TOKEN, regex=False)),
                           BY_EDIT)
    said = rows.groupby(list(BY_EDIT), as_index=False)["said_no_seg"].mean()
    table = summarize(rows, by=BY_EDIT, add_overall=False).merge(said, on=list(BY_EDIT), how="left")
    return table[[*BY_EDIT, "n", "see", "said_no_seg", "say_mentions_gt", "say_similarity"]]


def _with_all_group(rows: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """`rows`, plus a copy of them with the last key of `by` set to "all" (one overall group per other keys)."""
    return pd.concat([rows, rows.assign(**{by[-1]: "all"})], ignore_index=True)


def _with_all_row(rows: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """`summarize` per `by` group, plus one row per group of the other keys with the last key set to "all"."""
    return summarize(_with_all_group(rows, by), by=by, add_overall=False)


def with_summary_columns(table: pd.DataFrame, *, run_id: str, checkpoint: str) -> pd.DataFrame:
    """A `per_query_type` table with schemas.results.SUMMARY_SCHEMA's columns in their order, plus `query_type`."""
    out = table.assign(run_id=run_id, checkpoint=checkpoint, checkpoint_hash="", protocol="clean", subset="all")
    keys = SUMMARY_SCHEMA.names.index("subset") + 1
    return out[[*SUMMARY_SCHEMA.names[:keys], "query_type", *SUMMARY_SCHEMA.names[keys:]]]


def side_by_side(tables: dict[str, pd.DataFrame], metrics: tuple[str, ...] = ("ciou", "giou", "see")) -> pd.DataFrame:
    """One row per (dataset, split, query_type) with `<metric>_<name>` columns for each named table.

    Args:
        tables: name -> a `per_query_type` table (e.g. {"baseline": ..., "untrained": ..., "trained": ...}).
    """
    merged: pd.DataFrame | None = None
    for name, table in tables.items():
        part = table[[*BY_TYPE, "n", *metrics]].rename(columns={m: f"{m}_{name}" for m in metrics} | {"n": f"n_{name}"})
        merged = part if merged is None else merged.merge(part, on=list(BY_TYPE), how="outer")
    assert merged is not None, "side_by_side needs at least one table"
    n_cols = [c for c in merged.columns if c.startswith("n_")]
    merged.insert(len(BY_TYPE), "n", merged[n_cols].max(axis=1))
    return merged.drop(columns=n_cols).sort_values(list(BY_TYPE)).reset_index(drop=True)


def format_side_by_side(table: pd.DataFrame, keys: tuple[str, ...] = BY_TYPE) -> str:
    """Text table, metrics in %, NaN (not applicable) as '-'; `keys` and "n" are shown as they are."""
    shown = table.copy()
    for col in shown.columns:
        if col not in (*keys, "n"):
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}")
    return shown.to_string(index=False)


def ciou_ratio(trained: pd.DataFrame, untrained: pd.DataFrame, *, dataset: str, split: str) -> float:
    """Trained cIoU / untrained cIoU on the "all" row of one split (inf when the untrained cIoU is 0)."""
    def ciou(t: pd.DataFrame) -> float:
        return _overall(t[t["split"] == split], dataset, "ciou")

    base = ciou(untrained)
    return float("inf") if base == 0 else ciou(trained) / base


def _overall(table: pd.DataFrame, dataset: str, metric: str) -> float:
    row = table[(table["dataset"] == dataset) & (table["query_type"] == "all")]
    if row.empty:
        raise ValueError(f"no evaluation rows for dataset {dataset!r}; is it in the demo's eval_data?")
    return float(row[metric].iloc[0])


def grounding_reached(
    trained: pd.DataFrame, baseline: pd.DataFrame, *, dataset: str, see_dataset: str, margin: float, see_goal: float
) -> bool:
    """True when the trained cIoU on `dataset` beats the all-objects baseline's by `margin` and See on
    `see_dataset` >= `see_goal` (both tables from `per_query_type`)."""
    beats = _overall(trained, dataset, "ciou") - _overall(baseline, dataset, "ciou") >= margin
    return beats and _overall(trained, see_dataset, "see") >= see_goal


def learning_curve(stages: list[tuple[int, float, pd.DataFrame]]) -> pd.DataFrame:
    """cIoU / gIoU / See per query type after each training stage.

    Args:
        stages: (optimizer step, cumulative training wall seconds, that stage's per-query rows) per stage.
    Returns:
        One row per (step, dataset, split, query_type): step, train_wall_s, then the `per_query_type` columns.
    """
    frames = [per_query_type(queries).assign(step=step, train_wall_s=wall_s) for step, wall_s, queries in stages]
    curve = pd.concat(frames, ignore_index=True)
    return curve[["step", "train_wall_s", *[c for c in curve.columns if c not in ("step", "train_wall_s")]]]


def format_curve(curve: pd.DataFrame, *, dataset: str, metric: str = "ciou") -> str:
    """Text table: one row per stage (step, training minutes), one column per query type of `dataset` (in %)."""
    rows = curve[curve["dataset"] == dataset]
    wide = rows.pivot_table(index=["step", "train_wall_s"], columns="query_type", values=metric).reset_index()
    wide["train_wall_s"] = (wide["train_wall_s"] / 60).map(lambda v: f"{v:.1f}")
    wide = wide.rename(columns={"train_wall_s": "train_min"})
    for col in wide.columns[2:]:
        wide[col] = wide[col].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}")
    return wide.to_string(index=False)


LANGUAGE_FIGURES = ("caption_colour", "caption_shape", "lookup_acc", "acc", "point_auc", "point_hit",
                    "answer_see")
"""The held-out figures of `demo.jobs.pretrain_language` the demo shows per language stage (those a stage reports)."""


def language_stages(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each language stage's kept held-out evaluation (the row marked `kept`, the stage's written LLaVA; the last
    row in tables without that column): one row per stage (in the given order) with stage, step, minutes (the whole
    stage's) and the `LANGUAGE_FIGURES` it reports (NaN where a stage has no such objective).

    Args:
        metrics: stage name -> that run's metrics.parquet rows (one per evaluation, `step` and `seconds` columns).
    """
    rows = []
    for stage, table in metrics.items():
        if table.empty:
            raise ValueError(f"language stage {stage!r}: metrics.parquet has no evaluation row; re-run that stage")
        table = table.sort_values("step")
        marked = table[table["kept"].astype(bool)] if "kept" in table.columns else table.iloc[:0]
        kept = marked.iloc[-1] if len(marked) else table.iloc[-1]
        rows.append({"stage": stage, "step": int(kept["step"]), "minutes": float(table["seconds"].max()) / 60}
                    | {name: float(kept[name]) if name in kept.index else float("nan") for name in LANGUAGE_FIGURES})
    return pd.DataFrame(rows, columns=["stage", "step", "minutes", *LANGUAGE_FIGURES])


def format_language_stages(table: pd.DataFrame) -> str:
    """Text table of `language_stages`: minutes to one decimal, the figures in % ('-' where not measured) except
    `point_auc` (0.5 is chance)."""
    shown = table.copy()
    shown["minutes"] = shown["minutes"].map(lambda v: f"{v:.1f}")
    for name in LANGUAGE_FIGURES:
        scale, digits = (1, 2) if name == "point_auc" else (100, 1)
        shown[name] = shown[name].map(lambda v, s=scale, d=digits: "-" if pd.isna(v) else f"{s * v:.{d}f}")
    return shown.to_string(index=False)
