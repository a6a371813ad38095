"""Conformance tests: the preprocessing job on small trees in the REAL raw layouts, against READ's own loaders.

Fixture trees are built from what the public loaders read (READ `dataloaders/`, lichengunc/refer `refer.py`), never
from the project's synthetic generator, and expected values are computed independently (pycocotools, OpenCV,
`cv2.imread`), never through the project's readers.
"""
