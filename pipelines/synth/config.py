"""Options of the synthetic raw-dataset generator (`python -m jobs.synth`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

DATASETS = ("reasonseg", "refcoco", "refcoco+", "refcocog", "R-refcoco", "R-refcoco+", "R-refcocog", "fprefcoco",
            "fprefcoco+", "fprefcocog", "refclef", "llava_vqa", "ade20k", "cocostuff", "pascal_part", "paco_lvis",
            "mapillary")
"""Dataset names `SynthConfig.datasets` accepts (the same names the preprocessing job takes)."""


@dataclass(kw_only=True)
class SynthConfig:
    """What to write and how big. Every count is a number of IMAGES (REFER/ReasonSeg queries come on top)."""

    out: str = MISSING
    """Local root folder of the raw tree (gets reason_seg/, refer_seg/, llava_dataset/, coco/, ade20k/, cocostuff/,
    vlpart/, mapillary/)."""
    seed: int = 0
    """Same seed and options -> byte-identical files."""
    image_size: list[int] = field(default_factory=lambda: [128, 96])
    """(width, height) of every image in pixels; the benchmark uses [640, 480]."""
    min_objects: int = 2
    """Fewest shapes per image (>= 2 so that the text decides which object is meant)."""
    max_objects: int = 5
    """Most shapes per image."""
    datasets: list[str] = field(default_factory=lambda: list(DATASETS))
    """Which datasets to write (subset of pipelines.synth.config.DATASETS)."""
    num_reasonseg_train: int = 24
    """ReasonSeg train images."""
    num_reasonseg_val: int = 8
    """ReasonSeg val images. Per split, the last JSON is written in cp1252 and the first train image carries an EXIF
    rotation (see pipelines.synth.reasonseg)."""
    num_refcoco_train: int = 40
    """RefCOCO (and refcoco+, R-refcoco(+), fprefcoco(+)) train images."""
    num_refcoco_val: int = 12
    """RefCOCO-family val images."""
    num_refcoco_testA: int = 8
    """RefCOCO-family testA images."""
    num_refcoco_testB: int = 8
    """RefCOCO-family testB images."""
    num_refcocog_train: int = 40
    """RefCOCOg (and R-refcocog, fprefcocog) train images."""
    num_refcocog_val: int = 12
    """RefCOCOg val images."""
    num_refcocog_test: int = 8
    """RefCOCOg test images."""
    num_refclef_train: int = 12
    """RefCLEF train images (saiapr_tc-12 pool, separate from the COCO pool of the RefCOCO family)."""
    num_refclef_val: int = 4
    """RefCLEF val images."""
    num_refclef_testA: int = 2
    """RefCLEF testA images."""
    num_refclef_testB: int = 2
    """RefCLEF testB images."""
    num_refclef_testC: int = 2
    """RefCLEF testC images (REFER's RefCLEF unc split has testA, testB and testC)."""
    num_llava: int = 24
    """LLaVA-Instruct conversations (one image each)."""
    num_ade20k: int = 16
    """ADE20K training images."""
    num_cocostuff: int = 4
    """COCO-Stuff train2017 label maps (with their coco/train2017 images)."""
    num_pascal_part: int = 4
    """PASCAL-Part train images (a body and two eyes per shape)."""
    num_paco_lvis: int = 4
    """PACO-LVIS train images (an object and one part per shape)."""
    num_mapillary: int = 4
    """Mapillary Vistas v2.0 training label maps."""
    max_refs_per_image: int = 3
    """REFER: at most this many referred objects per image."""
    max_sents_per_ref: int = 3
    """REFER: at most this many true sentences per ref."""
    relations_first: bool = True
    """REFER: a ref whose object can be named by a relation to another object ("the red circle left of the green
    triangle") gets that expression first, as annotators often write one; false: expression types drawn evenly."""
    rle_fraction: float = 0.25
    """Fraction of RefCOCO-family annotations whose `segmentation` is a one-element list of RLE dicts (pycocotools,
    `counts` as str) instead of a polygon list. RefCLEF annotations are always lists of RLE dicts."""
    noise: float = 6.0
    """Half-range of the uniform per-pixel background noise (0 = plain background)."""
    jpeg_quality: int = 90
    """JPEG quality of every written image."""

    def __post_init__(self) -> None:
        if "://" in str(self.out):
            raise ValueError(f"synth.out must be a local folder, got {self.out!r}; write locally, then copy the tree")
        if len(self.image_size) != 2 or min(self.image_size) < 32:
            raise ValueError(f"synth.image_size must be [width, height] with both >= 32, got {list(self.image_size)}")
        if not 2 <= self.min_objects <= self.max_objects <= 5:
            raise ValueError(
                "synth.min_objects/max_objects must satisfy 2 <= min <= max <= 5, "
                f"got {self.min_objects}/{self.max_objects}"
            )
        unknown = sorted(set(self.datasets) - set(DATASETS))
        if unknown:
            raise ValueError(f"synth.datasets has unknown names {unknown}; choose from {list(DATASETS)}")
        for name, value in vars(self).items():
            if name.startswith("num_") and value < 0:
                raise ValueError(f"synth.{name} must be >= 0, got {value}")
        if self.max_refs_per_image < 1 or self.max_sents_per_ref < 1:
            raise ValueError("synth.max_refs_per_image and synth.max_sents_per_ref must be >= 1")
        if not 0.0 <= self.rle_fraction <= 1.0:
            raise ValueError(f"synth.rle_fraction must be in [0, 1], got {self.rle_fraction}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"synth.jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if not 0 <= self.noise <= 30:
            raise ValueError(f"synth.noise must be in [0, 30], got {self.noise}")

    @property
    def width(self) -> int:
        return int(self.image_size[0])

    @property
    def height(self) -> int:
        return int(self.image_size[1])
