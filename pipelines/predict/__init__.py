"""Running a READ checkpoint on images: requests, the predictor, and its outputs (`python -m jobs.predict`)."""
