"""Products people look at: fused frames, metrics CSV, montage, GIF and plots of a run."""

from ._sample import EvenSample
from ._truth import TRUTH_REFERENCE_COLUMN, TruthFrame, TruthProvider
from ._writer import CSV_BASE_COLUMNS, METRIC_KEYS, ProductWriter

__all__ = [
    "CSV_BASE_COLUMNS",
    "EvenSample",
    "METRIC_KEYS",
    "ProductWriter",
    "TRUTH_REFERENCE_COLUMN",
    "TruthFrame",
    "TruthProvider",
]
