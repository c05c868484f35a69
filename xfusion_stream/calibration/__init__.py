"""calibration room."""

# temporal calibration (pairing tables, file and live paths)
from ._temporal import MODES, PairingTable, Window, frame_time_ns, pairing_table
from ._temporal_stream import StreamingPairer

__all__ = [
    "MODES",
    "PairingTable",
    "StreamingPairer",
    "Window",
    "frame_time_ns",
    "pairing_table",
]

# spatial calibration (G400 grid), calibration records and registration
from ._grid_callback import GridCalibrationCallback  # noqa: E402
from ._intensity import IntensityMatch, match_intensity  # noqa: E402
from ._record import (  # noqa: E402
    CalibrationRecord,
    Crop,
    PixelSizes,
    ResidualPass,
    decompose_matrix,
    import_original,
    load_record,
    record_to_documents,
)
from ._registration import Registration  # noqa: E402
from ._spatial import CalibrationResult, calibrate_grid  # noqa: E402
from ._valid_crop import valid_crop  # noqa: E402

__all__ += [
    "CalibrationRecord",
    "CalibrationResult",
    "GridCalibrationCallback",
    "Crop",
    "IntensityMatch",
    "PixelSizes",
    "Registration",
    "ResidualPass",
    "calibrate_grid",
    "decompose_matrix",
    "import_original",
    "load_record",
    "match_intensity",
    "record_to_documents",
    "valid_crop",
]
