"""The CPU demo and the tiny model's warm start (`make demo`, `make demo-grounding`; see demo/README.md).

One-way wall: demo/ builds on schemas/, model/, pipelines/ and jobs/; nothing outside demo/ imports it
(tests/unit/test_layering.py)."""
