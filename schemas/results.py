"""Evaluation result tables (Parquet), written by jobs.evaluate and read by pipelines.results.

`queries/` is a Parquet dataset partitioned by dataset and split, one row per scored query.
`summary.parquet` has one row per (dataset, split, subset). Both are validated with `validate_*` before commit.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.arrow import validate_table, versioned

QUERY_TABLE_VERSION = 3
"""Layout version of the queries table. 2: `edit` added (false premises' rewritten element); 3: `protocol`,
`prompt` and `template_id` added (how each row was made)."""

QUERY_SCHEMA = versioned(
    pa.schema(
        [
            ("run_id", pa.string()),
            ("checkpoint", pa.string()),
            ("dataset", pa.string()),
            ("split", pa.string()),
            ("subset", pa.string()),  # ReasonSeg: short | long; otherwise "all"
            ("mode", pa.string()),  # "teacher_forced" | "generate"
            ("protocol", pa.string()),  # evaluation protocol (configs/protocols): "clean" | "read" | a YAML's name
            ("prompt", pa.string()),  # the exact conversation text fed to the model ("" on error rows)
            ("template_id", pa.string()),  # which question / answer templates built the prompt
            ("sample_key", pa.string()),
            ("shard", pa.string()),  # URL of the shard the sample was read from (visualisation re-reads the image)
            ("query_id", pa.string()),
            ("query_text", pa.string()),
            ("query_type", pa.string()),  # colour / shape / spatial / false_premise ... ("" when unknown)
            ("edit", pa.string()),  # false premises: the rewritten element, object | attribute | relation ("" otherwise)
            ("is_sentence", pa.bool_()),
            ("gt_present", pa.bool_()),
            ("pred_present", pa.bool_()),
            ("intersection", pa.int64()),
            ("union", pa.int64()),
            ("iou", pa.float64()),  # I/U, 1.0 when U == 0
            ("generated_text", pa.string()),  # generation mode; "" otherwise
            ("gt_sent", pa.string()),  # "" when none
            ("say_mentions_gt", pa.bool_()),  # project Say score parts (generation mode, false premises)
            ("say_similarity", pa.float64()),
            ("pred_mask_rle", pa.string()),  # COCO RLE of the predicted mask, JSON {"size": [H, W], "counts": str}
            ("similarity", pa.list_(pa.float32())),  # the [SEG] similarity map, side*side, row-major (empty if none)
            ("points_xy", pa.list_(pa.float32())),  # SasP points flattened x0,y0,x1,y1,... in original pixels
            ("point_labels", pa.list_(pa.int8())),  # 1 positive, 0 negative, -1 padding
            ("num_pos_points", pa.int32()),
            ("num_neg_points", pa.int32()),
            ("num_pad_points", pa.int32()),
            ("latency_ms", pa.float64()),
            ("error", pa.string()),  # "" for scored rows; the reason for a sample that could not be decoded
        ]
    ),
    version=QUERY_TABLE_VERSION,
)

SUMMARY_TABLE_VERSION = 2
"""Layout version of summary.parquet. 2: `checkpoint_hash` and `protocol` added."""

SUMMARY_SCHEMA = versioned(
    pa.schema(
        [
            ("run_id", pa.string()),
            ("checkpoint", pa.string()),
            ("checkpoint_hash", pa.string()),  # sha256 of the checkpoint's weights index (see checkpoint_hash)
            ("protocol", pa.string()),  # evaluation protocol of every row summarised
            ("dataset", pa.string()),
            ("split", pa.string()),
            ("subset", pa.string()),
            ("n", pa.int64()),
            ("giou", pa.float64()),
            ("ciou", pa.float64()),
            ("see", pa.float64()),  # generation mode; NaN otherwise
            ("segment", pa.float64()),
            ("say_mentions_gt", pa.float64()),
            ("say_similarity", pa.float64()),
            ("num_errors", pa.int64()),
        ]
    ),
    version=SUMMARY_TABLE_VERSION,
)


PREDICTION_TABLE_VERSION = 1
"""Layout version of jobs.predict's predictions.parquet."""

PREDICTION_SCHEMA = versioned(
    pa.schema(
        [
            ("request_id", pa.string()),  # names masks/<id>.png, overlays/<id>.png, traces/<id>.npz
            ("checkpoint", pa.string()),
            ("image", pa.string()),
            ("height", pa.int32()),  # original (EXIF-upright) size; 0 when the image could not be read
            ("width", pa.int32()),
            ("mode", pa.string()),  # "segment" | "generate"
            ("query_text", pa.string()),  # "" when the request gave a prompt
            ("prompt", pa.string()),  # the exact conversation text fed to the model
            ("generated_text", pa.string()),  # generate mode; "" otherwise
            ("num_seg", pa.int32()),  # [SEG] tokens in the (generated) answer = masks predicted
            ("pred_present", pa.bool_()),  # the first mask has foreground
            ("pred_area", pa.int64()),  # its foreground pixels
            ("pred_mask_rle", pa.string()),  # COCO RLE of the first mask, JSON {"size": [H, W], "counts": str}
            ("similarity", pa.list_(pa.float32())),  # the first [SEG]'s similarity map, side*side, row-major
            ("points_xy", pa.list_(pa.float32())),  # its SasP points flattened x0,y0,x1,y1,... in original pixels
            ("point_labels", pa.list_(pa.int8())),  # 1 positive, 0 negative, -1 neutral / padding
            ("latency_ms", pa.float64()),
            ("error", pa.string()),  # "" when the request ran; the reason otherwise (the other requests go on)
        ]
    ),
    version=PREDICTION_TABLE_VERSION,
)


def validate_queries(table: pa.Table) -> pa.Table:
    """Return `table` cast to QUERY_SCHEMA, or raise ValueError naming the wrong columns."""
    return validate_table(table, QUERY_SCHEMA, name="queries table")


def validate_predictions(table: pa.Table) -> pa.Table:
    """Return `table` cast to PREDICTION_SCHEMA, or raise ValueError naming the wrong columns."""
    return validate_table(table, PREDICTION_SCHEMA, name="predictions table")


def validate_summary(table: pa.Table) -> pa.Table:
    """Return `table` cast to SUMMARY_SCHEMA, or raise ValueError naming the wrong columns."""
    return validate_table(table, SUMMARY_SCHEMA, name="summary table")
