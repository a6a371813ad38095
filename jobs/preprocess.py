"""Raw dataset -> deterministic WebDataset shards + manifest.parquet + rejects.parquet + config.yaml, on Ray.

    python -m jobs.preprocess dataset=refcoco root=/data/raw split=val out=/data/shards/refcoco-val [num_workers=4]
    ray job submit --working-dir . -- python -m jobs.preprocess dataset=reasonseg root=... split=train out=s3://...
"""

from __future__ import annotations

import sys

from jobs._config import load_config, write_config
from jobs._ray import ray_session
from pipelines.preprocess_config import PreprocessConfig
from pipelines.shards import BadSampleError, preprocess_source, summary_lines
from pipelines.sources import open_source
from pipelines.sources.refer import ReferSource


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(PreprocessConfig, sys.argv[1:] if argv is None else argv)
    try:
        source = open_source(cfg.dataset, cfg.root, cfg.split, split_by=cfg.split_by)
    except ValueError as err:
        raise SystemExit(f"bad configuration: {err}") from err
    read_note = ""
    if isinstance(source, ReferSource):
        refs_path = source.refs_path()
        cfg.split_by = refs_path.rsplit("refs(", 1)[1].removesuffix(").p")  # the variant read, so --config repeats it
        read_note = f"# refs file read: {refs_path}\n"
        print(f"[preprocess] {cfg.dataset}/{cfg.split}: reading {refs_path}", flush=True)
    write_config(cfg.out, cfg, note=read_note)
    with ray_session(cfg.ray_address, num_cpus=max(cfg.num_workers, 1), needed=cfg.num_workers > 0):
        try:
            summary = preprocess_source(
                source, cfg.out, shard_max_samples=cfg.shard_max_samples, shard_max_bytes=cfg.shard_max_bytes,
                num_workers=cfg.num_workers, on_bad_sample=cfg.on_bad_sample,
                progress=lambda line: print(line, flush=True),
            )
        except BadSampleError as err:
            raise SystemExit(f"bad sample (on_bad_sample=raise): {err}") from err
    print(f"[preprocess] wrote {cfg.out}")
    for line in summary_lines(summary):
        print(f"[preprocess] {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
