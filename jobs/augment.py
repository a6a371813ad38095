"""FP-RefCOCO-style false-premise augmentation of a REFER-format dataset split, on Ray.

    python -m jobs.augment dataset=refcoco root=/data split=train out=runs/fp_refcoco_train \
        [per_query=1] [edits=[object,attribute,relation]] [edit_weights={relation:2}] [seed=0] \
        [rewriter=rules|lm lm_path=DIR] [num_workers=2] [ray_address=auto] [export_refer=true]

Writes shards (true + false-premise queries, schemas.sample; each variant's extra["verified"] says whether the
annotations show it describes no object of the image), manifest.parquet, rejects.parquet, summary.parquet (coverage,
the edit mix against the weights, verified shares and reject reasons per edit type), config.yaml, and with
export_refer a REFER-format FP-RefCOCO copy under <out>/refer. Prints the coverage and mix line. Atomic and resumable
(same plan digest -> finished shards are kept); deterministic for a seed.
"""

from __future__ import annotations

import json
import sys

from jobs._config import load_config, write_config
from jobs._ray import ray_session
from pipelines import storage
from pipelines.augment.config import AugmentConfig
from pipelines.augment.context import CocoIndex
from pipelines.augment.export import export_refer
from pipelines.augment.readback import iter_metadata, iter_samples, shard_urls
from pipelines.augment.source import AugmentingSource
from pipelines.augment.summary import AugmentCounts, counting, counts_of, summary_table
from pipelines.shards import BadSampleError, preprocess_source, summary_lines
from pipelines.sources import REFER_DATASETS
from pipelines.sources.refer import ReferSource, default_split_by


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(AugmentConfig, sys.argv[1:] if argv is None else argv)
    inner = ReferSource(dataset=cfg.dataset, root=cfg.root, split=cfg.split, split_by=cfg.split_by)
    try:
        refs_path = inner.refs_path()  # names root/split_by before any work starts
        inner.check()  # and a split the refs file holds
        instances_path = storage.join(inner.folder, "instances.json")
        instances = json.loads(storage.read_bytes(instances_path))
        coco = CocoIndex.from_instances(instances, source=instances_path)
    except (ValueError, OSError) as err:
        raise SystemExit(f"bad configuration: {err}") from err
    write_config(cfg.out, cfg)
    with ray_session(cfg.ray_address, num_cpus=max(cfg.num_workers, 1), needed=cfg.num_workers > 0):
        try:
            source = AugmentingSource(
                inner=inner, coco=coco, rewriter=cfg.build_rewriter(), policy=cfg.policy(),
                fingerprint=cfg.fingerprint(), calibration_images=cfg.calibration_images,
            )
            written = preprocess_source(
                source, cfg.out, shard_max_samples=cfg.shard_max_samples, shard_max_bytes=cfg.shard_max_bytes,
                num_workers=cfg.num_workers, on_bad_sample=cfg.on_bad_sample,
                progress=lambda s: print(s, flush=True),
            )
            counts = AugmentCounts()
            if cfg.export_refer:
                samples = counting(iter_samples(shard_urls(cfg.out)), counts)
                name = cfg.export_name or f"fp{cfg.dataset}"
                read_by = refs_path.rsplit("refs(", 1)[1].removesuffix(").p")
                split_by = default_split_by(name)[0] if name in REFER_DATASETS else read_by  # the file READ reads
                exported = export_refer(
                    samples, instances=instances, coco=coco,
                    out_root=cfg.export_root or storage.join(cfg.out, "refer"), name=name, split=cfg.split,
                    split_by=split_by,
                )
                print(f"[augment] exported {exported} as refer_seg/{name}/refs({split_by}).p")
            else:
                counts = counts_of(iter_metadata(shard_urls(cfg.out)))
            table = summary_table(counts, dataset=cfg.dataset, split=cfg.split, rewriter=cfg.rewriter,
                                  weights=cfg.weights(), calibration=source.calibration)
            storage.atomic_write_parquet(storage.join(cfg.out, "summary.parquet"), table)
        except BadSampleError as err:
            raise SystemExit(f"bad sample (on_bad_sample=raise): {err}") from err
    for line in summary_lines(written):
        print(f"[augment] {line}")
    if source.calibration is not None:
        shares = ", ".join(f"{e} {100 * v:.0f}%" for e, v in source.calibration.shares.items())
        print(f"[augment] calibration on {source.calibration.images} images ({source.calibration.expressions} "
              f"expressions): a valid candidate exists for {shares}")
    print(f"[augment] {counts.line(cfg.weights())}")
    for (edit, reason), n in sorted(counts.rejected.items()):
        print(f"[augment]   rejected {edit}/{reason}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
