"""Mapillary Vistas v2.0 reader: `mapillary/training/v2.0/labels/*.png` over `mapillary/training/images/*.jpg`.

READ's `init_mapillary` / `SemSegDataset.__getitem__` (dataloaders/sem_seg_dataset.py, rui-qian/READ), matched here:
- the classes are `mapillary/config_v2.0.json` `labels[].readable`, lower-cased, index = label value (the v2.0 label
  PNGs are palette images; their indices are the values, as `np.array(Image.open(...))` gives them);
- the samples are the label maps listed; each image is the label's path with `.png` -> `.jpg` and `v2.0/labels` ->
  `images`. Images without a label map are not part of the dataset and are not rejected;
- only 255 is ignored (READ's ignore label); "unlabeled" (the last v2.0 label) is a class like any other, offered
  as a query when present and as an absent class when not, as READ offers it;
- one query per present value (`LabelMapSource`: "<stem>:c<v>", mask = label == v, 255 on ignored pixels).

Where this reader chooses otherwise, and why: READ looks a sampled name up with `classes.index(name)`, so if two
labels shared a readable name, both queries would get the first one's pixels; here each value keeps its own pixels.
A value beyond the config's labels (READ: IndexError; e.g. v2.0 labels read with the v1.2 config) rejects the image
(`unknown_class`); an unreadable config rejects the whole split (`bad_config`, queries not countable).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pipelines.sources.cocostuff import LabelMapSource

_SPLIT_DIRS = {"train": "training", "val": "validation", "training": "training", "validation": "validation"}


@dataclass(kw_only=True)
class MapillarySource(LabelMapSource):
    """Reads `<root>/mapillary/<training|validation>/v2.0/labels/*.png` with `<root>/mapillary/config_v2.0.json`."""

    layout = "mapillary/config_v2.0.json, mapillary/training/v2.0/labels/*.png and mapillary/training/images/*.jpg"

    @property
    def folder(self) -> str:
        return os.path.join(self.root, "mapillary", _SPLIT_DIRS.get(self.split, self.split))

    @property
    def label_dir(self) -> str:
        return os.path.join(self.folder, "v2.0", "labels")

    @property
    def image_dir(self) -> str:
        return os.path.join(self.folder, "images")

    @property
    def classes_source(self) -> str:
        return os.path.join(self.root, "mapillary", "config_v2.0.json")

    def check(self) -> None:
        if not os.path.isfile(self.classes_source):
            raise ValueError(f"root: {self.classes_source} does not exist; point root= at the folder holding "
                             f"{self.layout}")
        super().check()

    def read_classes(self) -> tuple[str, ...]:
        path = self.classes_source
        try:
            with open(path, encoding="utf-8") as f:
                labels = json.load(f)["labels"]
            names = tuple(label["readable"].lower() for label in labels)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"bad_config: {path} is not readable JSON ({type(err).__name__}: {err})") from err
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"bad_config: {path} needs 'labels': [{{'readable': str, ...}}, ...] "
                             f"({type(err).__name__}: {err})") from err
        if not names:
            raise ValueError(f"bad_config: {path} lists no labels")
        return names
