"""The demo's entry points: `python -m demo.jobs.<name> [--config FILE.yaml] key=value ...` (demo, pretrain_vision,
pretrain_language)."""
