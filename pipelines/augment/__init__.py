"""FP-RefCOCO-style false-premise augmentation: rewrite one element of a true referring expression so that it
matches nothing in the image, validate the rewrite against the image's annotations, and keep the original as the
correction (`gt_sent`).

Modules:
- words: `vocab` (attribute, relation and ordinal word lists), `nouns_coco` and `nouns_refclef` (data: the words
  people use for each category, with their source), `lexicon` (a dataset's nouns, plurals, head nouns), `text`
  (word spans and diffs), `description` (an expression read as constraints on its referent);
- the image: `objects` (annotated objects: category, box, annotated attributes), `context` (what one image holds);
- checks: `validation` (the one check every rewrite goes through), `grounding` (an attribute or relation edit judged
  per annotated object: rejected when it describes one, unverified when the annotations cannot tell);
- making variants: `rules` and `lm` (the two rewriters), `mix` (edit type first, by weight), `calibration` (the
  type draw fitted to the split), `variants` (augment one ShardSample), `source` (the job's reader);
- output and measurement: `export` (REFER-format FP-RefCOCO files), `summary` (coverage, mix, verified shares,
  reject reasons), `expression_set` (a hand-written test set as instances/samples/REFER tree), `audit` (variants
  judged against what the picture really shows).
See docs/augmentation.md.
"""
