"""The fused-frame schema: every field of a fused frame, declared once.

A ``FrameField`` says what a field is (dtype, shape, units, description), what it is
called in ``metrics.csv`` and where a window's value comes from: the ``WindowJob``
(``"job"``), the model's ``WindowOutput`` (``"output"``) or the truth scores
(``"truth"``, double mode only). The composer's data keys and events, the products'
CSV header and rows and the metric names are all generated from a ``FrameSchema``,
so a new per-frame value is one ``FrameField`` (``FUSED_FRAME.extended(...)``), and
``FusedFrame`` is the record built from one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._fidelity import MAP_REDUCTION, NOISE_UNITS, RESIDUAL_MEANING, residual_map_shape
from ._truth import CANDIDATES, METRICS, metric_key

if TYPE_CHECKING:
    from ._inference import WindowOutput
    from ._runner import WindowJob

__all__ = ["BLEND_SOURCES", "FUSED_FRAME", "FrameField", "FrameSchema", "FusedFrame"]

Source = Literal["job", "output", "truth"]
_SOURCES = ("job", "output", "truth")
_JSON_DTYPES = {"i": "integer", "u": "integer", "f": "number", "b": "boolean"}


@dataclass(frozen=True)
class FrameField:
    """One per-frame value of the fused stream.

    ``get`` takes the ``source`` object (a ``WindowJob``, a ``WindowOutput`` or the
    truth scores dict) and returns the value, or None when this window has none; then
    the field is absent from the record and events carry ``default`` (filled to the
    shape for arrays). A field with ``default=None`` is required. ``shape=None`` is the
    run's fused-frame shape; a callable ``shape`` gives the field's shape from it (a
    map on a coarser grid). An array's CSV columns are ``column_prefix + label``, one
    per element; a scalar's is its name.
    """

    name: str
    dtype: str  # numpy dtype string, e.g. "<f4"
    source: Source
    get: Callable[[Any], Any]
    shape: tuple[int, ...] | Callable[[tuple[int, int]], tuple[int, ...]] | None = ()
    units: str | None = None
    description: str = ""
    labels: tuple[str, ...] = ()
    column_prefix: str = ""
    in_csv: bool = True
    dims: tuple[str, ...] | None = None
    default: float | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"field name {self.name!r} is not an identifier")
        if self.source not in _SOURCES:
            raise ValueError(f"{self.name}: source must be one of {_SOURCES}, not {self.source!r}")
        kind = np.dtype(self.dtype).kind
        if self.shape == () and kind not in _JSON_DTYPES:
            raise ValueError(f"{self.name}: scalar dtype {self.dtype!r} is not a number")
        if self.in_csv and not isinstance(self.shape, tuple):
            raise ValueError(f"{self.name}: a frame-sized field cannot go to the CSV")
        size = math.prod(self.shape) if isinstance(self.shape, tuple) else 0
        if self.in_csv and self.shape and len(self.labels) != size:
            raise ValueError(f"{self.name}: {size} values need as many labels")

    @property
    def columns(self) -> tuple[str, ...]:
        """Its ``metrics.csv`` column names (none for the image)."""
        if not self.in_csv:
            return ()
        if self.shape == ():
            return (self.name,)
        return tuple(self.column_prefix + label for label in self.labels)

    def data_key(self, frame_shape: tuple[int, int]) -> dict[str, Any]:
        """Its entry in the fused descriptor's ``data_keys``."""
        key: dict[str, Any] = {"source": "xfusion"}
        if self.shape == ():
            key["dtype"] = _JSON_DTYPES[np.dtype(self.dtype).kind]
        else:
            key["dtype"] = "array"
            key["dtype_numpy"] = np.dtype(self.dtype).str
        key["shape"] = list(self.shape_for(frame_shape))
        if self.dims is not None:
            key["dims"] = list(self.dims)
        if self.units is not None:
            key["units"] = self.units
        return key

    def shape_for(self, frame_shape: tuple[int, int] | None) -> tuple[int, ...]:
        """Its shape in a run whose fused frames are ``frame_shape`` (() if unknown)."""
        if isinstance(self.shape, tuple):
            return self.shape
        if frame_shape is None:
            return ()
        return tuple(frame_shape) if self.shape is None else tuple(self.shape(frame_shape))

    def missing(self, frame_shape: tuple[int, int] | None = None) -> Any:
        """The value events carry when a window has none (KeyError if required);
        ``frame_shape`` sizes a frame-dependent array."""
        if self.default is None:
            raise KeyError(f"fused frame has no value for required field {self.name!r}")
        if self.shape == ():
            return self.default
        return np.full(self.shape_for(frame_shape), self.default, dtype=self.dtype)

    def event_value(self, value: Any) -> Any:
        """``value`` as an event carries it: a Python scalar or a numpy array of ``dtype``."""
        if self.shape == ():
            return _scalar(self.dtype, value)
        return np.asarray(value, dtype=self.dtype)

    def csv_values(self, value: Any) -> list[Any]:
        """``value`` as its CSV cells, one per column."""
        if self.shape == ():
            return [_scalar(self.dtype, value)]
        flat = np.asarray(value, dtype=self.dtype).reshape(-1)
        if flat.shape != (len(self.labels),):
            raise ValueError(
                f"{self.name} must have {len(self.labels)} values, got shape {np.shape(value)}"
            )
        return [_scalar(self.dtype, v) for v in flat]


def _scalar(dtype: str, value: Any) -> Any:
    kind = np.dtype(dtype).kind
    if kind in "iu":
        return int(value)
    if kind == "b":
        return bool(value)
    return float(value)


class FrameSchema:
    """The ordered fields of a fused frame; everything that lists them is generated here."""

    def __init__(self, fields: Iterable[FrameField]) -> None:
        self.fields = tuple(fields)
        self._by_name = {f.name: f for f in self.fields}
        if len(self._by_name) != len(self.fields):
            raise ValueError(f"duplicate field names in {[f.name for f in self.fields]}")
        columns = [c for f in self.fields for c in f.columns]
        if len(set(columns)) != len(columns):
            raise ValueError(f"duplicate CSV columns in {columns}")

    def __getitem__(self, name: str) -> FrameField:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[FrameField]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        return f"FrameSchema({', '.join(f.name for f in self.fields)})"

    def extended(self, *fields: FrameField) -> FrameSchema:
        """This schema plus ``fields`` (appended; names must be new)."""
        return FrameSchema([*self.fields, *fields])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The truth scores: present in double mode, NaN in events otherwise."""
        return tuple(f.name for f in self.fields if f.source == "truth")

    @property
    def csv_columns(self) -> tuple[str, ...]:
        """The CSV columns every row has (metric columns are added per run)."""
        return tuple(c for f in self.fields if f.source != "truth" for c in f.columns)

    def data_keys(
        self, frame_shape: tuple[int, int], names: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Descriptor ``data_keys`` of all fields (or of ``names``, in that order)."""
        chosen = self.fields if names is None else [self[n] for n in names]
        return {f.name: f.data_key(frame_shape) for f in chosen}

    def event_data(self, frame: FusedFrame) -> dict[str, Any]:
        """An event's ``data``: every field, absent ones at their default."""
        return {f.name: f.event_value(frame[f.name]) for f in self.fields}

    def csv_row(self, frame: FusedFrame, metric_columns: Sequence[str]) -> list[Any]:
        """One ``metrics.csv`` row: the fixed columns, then ``metric_columns`` ("" if unscored)."""
        row: list[Any] = []
        for f in self.fields:
            if f.source != "truth" and f.columns:
                row += f.csv_values(frame[f.name])
        for name in metric_columns:
            row.append(float(frame[name]) if name in frame else "")
        return row

    def record(
        self, job: WindowJob, output: WindowOutput, truth: Mapping[str, float]
    ) -> FusedFrame:
        """The fused frame of one window (``truth``: its scores, empty when unscored)."""
        sources: dict[str, Any] = {"job": job, "output": output, "truth": truth}
        values = {}
        for f in self.fields:
            value = f.get(sources[f.source])
            if value is not None:
                values[f.name] = value
        return FusedFrame(values, self)


class FusedFrame:
    """One fused window: a value per schema field, by name (``frame["tau"]``).

    Truth scores are present only when the window was scored; any other absent field
    with a default reads as that default. The properties below give typed access to
    the standard fields; added fields are read by name.
    """

    __slots__ = ("schema", "values")

    def __init__(self, values: Mapping[str, Any], schema: FrameSchema | None = None) -> None:
        self.schema = FUSED_FRAME if schema is None else schema
        unknown = [name for name in values if name not in self.schema]
        if unknown:
            raise KeyError(f"not fields of {self.schema!r}: {unknown}")
        missing = [f.name for f in self.schema if f.default is None and f.name not in values]
        if missing:
            raise KeyError(f"fused frame needs a value for {missing}")
        self.values = dict(values)

    def __getitem__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        image = np.asarray(self.values.get("fused_image"))  # sizes frame-dependent defaults
        return self.schema[name].missing(image.shape if image.ndim == 2 else None)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def __repr__(self) -> str:
        return (
            f"FusedFrame(window_index={self.values.get('window_index')}, {len(self.values)} values)"
        )

    def replace(self, **changes: Any) -> FusedFrame:
        """A copy with some values changed (same schema)."""
        return FusedFrame({**self.values, **changes}, self.schema)

    @property
    def image(self) -> np.ndarray:
        return self["fused_image"]

    @property
    def window_index(self) -> int:
        return self["window_index"]

    @property
    def shimadzu_index(self) -> int:
        return self["shimadzu_index"]

    @property
    def shimadzu_time_ns(self) -> int:
        return self["shimadzu_time_ns"]

    @property
    def lr_indices(self) -> tuple[int, int, int]:
        return self["lr_indices"]

    @property
    def hr_indices(self) -> tuple[int, int]:
        return self["hr_indices"]

    @property
    def truth_index(self) -> int:
        return self["truth_index"]

    @property
    def attention(self) -> np.ndarray:
        return self["attention"]

    @property
    def tau(self) -> float:
        return self["tau"]

    @property
    def blend_weights(self) -> np.ndarray:
        return self["blend_weights"]

    @property
    def metrics(self) -> dict[str, float]:
        """The truth scores this window has (none outside double mode)."""
        return {name: self.values[name] for name in self.schema.metric_names if name in self}


#: What each blend weight of a motion-compensated model (``hr_warp``) stands for.
BLEND_SOURCES = ("network", "phantom_before", "phantom_after", "shimadzu")
_METRIC_MEANING = {
    "psnr": "PSNR in dB on 8 bit",
    "ssim": "SSIM on 8 bit",
    "aad": "mean absolute difference in 8-bit grey levels",
}
_CANDIDATE_MEANING = {
    "fused": "of the fused frame",
    "bicubic": "of bicubic x4 of Shimadzu frame t (baseline)",
    "nearest": "of the nearer Phantom input (baseline)",
}


def _metric_field(metric: str, candidate: str) -> FrameField:
    key = metric_key(metric, candidate)
    return FrameField(
        key,
        "<f8",
        "truth",
        lambda scores: scores.get(key),
        description=f"{_METRIC_MEANING[metric]} {_CANDIDATE_MEANING[candidate]} vs truth",
        default=math.nan,
    )


#: The fields of every fused event, in CSV order (then the truth scores).
FUSED_FRAME = FrameSchema(
    [
        FrameField(
            "fused_image", "<f4", "output", attrgetter("image"), shape=None,
            units="intensity", dims=("row", "col"), in_csv=False,
            description="the fused frame t on the Phantom grid, in [0, 1]",
        ),
        FrameField(
            "window_index", "<i8", "job", attrgetter("index"),
            description="position of the window in the run's pairing table",
        ),
        FrameField(
            "shimadzu_index", "<i8", "job", attrgetter("shimadzu_index"),
            description="Shimadzu frame t the window fuses",
        ),
        FrameField(
            "shimadzu_time_ns", "<i8", "job", attrgetter("shimadzu_time_ns"), units="ns",
            description="time of Shimadzu frame t on the pairing table's clock",
        ),
        FrameField(
            "lr_indices", "<i8", "job", attrgetter("lr"), shape=(3,),
            labels=("prev", "centre", "next"), column_prefix="lr_",
            description="Shimadzu frames t-1, t, t+1 fed to the model (clamped at the ends)",
        ),
        FrameField(
            "hr_indices", "<i8", "job", attrgetter("hr"), shape=(2,),
            labels=("before", "after"), column_prefix="hr_",
            description="Phantom frames before and after t fed to the model",
        ),
        FrameField(
            "truth_index", "<i8", "job", attrgetter("truth_index"),
            description="Phantom frame held out as truth (double mode), -1 otherwise",
        ),
        FrameField(
            "tau", "<f8", "output", attrgetter("tau"), default=math.nan,
            description="fraction of the Phantom interval the model placed t at (hr_warp)",
        ),
        FrameField(
            "blend_weights", "<f4", "output", attrgetter("blend_weights"), shape=(4,),
            labels=BLEND_SOURCES, column_prefix="w_", default=math.nan,
            description="mean share of each source in the fused frame (hr_warp)",
        ),
        FrameField(
            "attention", "<f4", "output", attrgetter("attention"), shape=(5,),
            labels=("lr_prev", "lr_centre", "lr_next", "hr_before", "hr_after"),
            column_prefix="att_",
            description="TSA attention per input frame (EDVR-STF), NaN where none",
        ),
        FrameField(
            "shimadzu_residual_rms", "<f8", "output", attrgetter("residual.rms"),
            units=NOISE_UNITS, default=math.nan, description=f"RMS of {RESIDUAL_MEANING}",
        ),
        FrameField(
            "shimadzu_residual_p99", "<f8", "output", attrgetter("residual.p99"),
            units=NOISE_UNITS, default=math.nan,
            description=f"99th percentile of |{RESIDUAL_MEANING}|",
        ),
        FrameField(
            "shimadzu_residual_map", "<f4", "output", attrgetter("residual.map"),
            shape=residual_map_shape, units=NOISE_UNITS, in_csv=False, default=math.nan,
            dims=("residual_row", "residual_col"),
            description=f"{RESIDUAL_MEANING}; {MAP_REDUCTION}",
        ),
        *(_metric_field(m, c) for c in CANDIDATES for m in METRICS),
    ]
)  # fmt: skip
