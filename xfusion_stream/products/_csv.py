"""``metrics.csv``: one row per fused frame, written and flushed as it arrives.

The columns come from the frame schema: every field with columns, then the truth
scores (all of them when the run has a truth, else those the first frame has), then
``truth_reference``, what the row was scored against ("" where unscored).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._truth import TRUTH_REFERENCE_COLUMN

if TYPE_CHECKING:
    from ..fusion import FrameSchema, FusedFrame

__all__ = ["MetricsCsv"]


class MetricsCsv:
    """The run's CSV at ``path``; ``every_metric``: the run has a truth throughout."""

    def __init__(self, path: Path, schema: FrameSchema, every_metric: bool) -> None:
        self.path = path
        self.schema = schema
        self.every_metric = every_metric
        self.columns: list[str] | None = None
        self.metric_columns: list[str] = []
        self._file: TextIO | None = None
        self._writer: Any = None

    def _open(self, frame: FusedFrame | None) -> None:
        self.metric_columns = [
            k
            for k in self.schema.metric_names
            if self.every_metric or (frame is not None and k in frame)
        ]
        reference = [TRUTH_REFERENCE_COLUMN] if self.metric_columns else []
        self.columns = [*self.schema.csv_columns, *self.metric_columns, *reference]
        self._file = open(self.path, "w", newline="")  # noqa: SIM115 - held for the run
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)

    def write(self, frame: FusedFrame, reference: str) -> None:
        """The frame's row (the file opens, header first, on the first frame)."""
        if self.columns is None:
            self._open(frame)
        row = self.schema.csv_row(frame, self.metric_columns)  # checks array lengths first
        if self.metric_columns:
            row.append(reference if any(k in frame for k in self.metric_columns) else "")
        assert self._file is not None
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        """Finish the file; a run without frames still leaves a header-only CSV."""
        if self.columns is None:
            self._open(None)
        assert self._file is not None
        self._file.close()
