"""Calibration records with non-finite or implausible numbers are refused at load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from xfusion_stream.calibration import CalibrationRecord, IntensityMatch, load_record
from xfusion_stream.core import ConfigError, InterCameraTransform

SHIMADZU, PHANTOM = (64, 96), (256, 384)
TRANSFORM = InterCameraTransform(
    rotation_deg=1.7, translation_px=(4.0, -6.5), scale_col=1.02, scale_row=0.985
)


@pytest.fixture
def data() -> dict:
    record = CalibrationRecord.from_transform(TRANSFORM, SHIMADZU, PHANTOM, source="truth")
    intensity = IntensityMatch(
        shimadzu_gain=1.1, shimadzu_offset_counts=-3.0, r2=0.97, n_pixels=900
    )
    return record.model_copy(update={"intensity": intensity}).model_dump(mode="json")


def _set(data: dict, path: str, value: float) -> dict:
    """``data`` with the value at ``a.b[1][2]``-like ``path`` replaced."""
    out = json.loads(json.dumps(data))
    node = out
    keys: list = []
    for part in path.replace("]", "").replace("[", ".").split("."):
        keys.append(int(part) if part.isdigit() else part)
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return out


NON_FINITE_FIELDS = [
    "intensity.shimadzu_gain",
    "intensity.shimadzu_offset_counts",
    "intensity.extra_blur_px",
    "matrix[0][2]",
    "matrix[1][1]",
    "scale_col",
    "rotation_deg",
    "translation_px[1]",
    "residuals[0].mean",
    "pixel_size_um.phantom",
]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("field", NON_FINITE_FIELDS)
def test_non_finite_fields_are_refused_naming_file_and_field(tmp_path, data, field, value):
    data = data | {
        "residuals": [{"name": "affine", "mean": 0.1, "std": 0.05, "max": 0.3}],
        "pixel_size_um": {"phantom": 2.0, "shimadzu": 8.0},
    }
    bad = _set(data, field, value)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))  # Python's json writes NaN / Infinity
    with pytest.raises(ConfigError) as info:
        load_record(path)
    message = str(info.value)
    assert str(path) in message
    assert field.split("[")[0].split(".")[0] in message
    assert field.split(".")[-1].split("[")[0] in message


def test_yaml_nan_is_refused_too(tmp_path, data):
    path = tmp_path / "bad.yaml"
    text = yaml.safe_dump(data).replace("shimadzu_gain: 1.1", "shimadzu_gain: .inf")
    assert ".inf" in text
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml: intensity.*shimadzu_gain"):
        load_record(path)


@pytest.mark.parametrize(("field", "value"), [("scale_col", 2.5), ("scale_row", 0.4)])
def test_implausible_per_axis_scales_are_refused(tmp_path, data, field, value):
    path = tmp_path / "scaled.json"
    path.write_text(json.dumps(data | {field: value}))
    with pytest.raises(ConfigError) as info:
        load_record(path)
    assert str(path) in str(info.value) and field in str(info.value)
    assert "implausible" in str(info.value)


@pytest.mark.parametrize("factor", [3.0, 0.3])
def test_matrix_scaled_against_the_ratio_is_refused(tmp_path, data, factor):
    m = np.asarray(data["matrix"])
    m[:2, :2] *= factor  # the stated scales still say ~1
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps(data | {"matrix": m.tolist()}))
    with pytest.raises(ConfigError, match=r"matrix\.json: matrix: implausible scale.*ratio is 4"):
        load_record(path)


@pytest.mark.parametrize(
    ("transform", "change"),
    [
        (InterCameraTransform(scale_col=0.5, scale_row=2.0), {}),
        (InterCameraTransform(rotation_deg=-179.0, scale_col=1.5, scale_row=1.5), {}),
        (InterCameraTransform(mirror=False, translation_px=(30.0, -20.0)), {}),
        (TRANSFORM, {"shimadzu_gain": 1e-6, "shimadzu_offset_counts": -1e6}),
        (TRANSFORM, {"shimadzu_gain": 1e6, "shimadzu_offset_counts": 1e6}),
        (TRANSFORM, None),
    ],
)
def test_plausible_records_still_load(tmp_path, data, transform, change):
    record = CalibrationRecord.from_transform(transform, SHIMADZU, PHANTOM, source="edge")
    if change is not None:
        intensity = IntensityMatch.model_validate(data["intensity"] | change)
        record = record.model_copy(update={"intensity": intensity})
    path = tmp_path / "ok.json"
    path.write_text(record.model_dump_json())
    assert load_record(path) == record


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("intensity.shimadzu_gain", 1e-30),
        ("intensity.shimadzu_gain", 1e39),
        ("intensity.shimadzu_offset_counts", 1e10),
        ("intensity.shimadzu_offset_counts", -1e39),
        ("intensity.extra_blur_px", 1e3),
    ],
)
def test_intensity_matches_no_two_cameras_give_are_refused(tmp_path, data, field, value):
    path = tmp_path / "intensity.json"
    path.write_text(json.dumps(_set(data, field, value)))
    with pytest.raises(ConfigError) as info:
        load_record(path)
    assert f"{path}: {field}: Input should be" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("translation_px[0]", 1e6),
        ("translation_px[1]", 3.0),
        ("rotation_deg", 11.7),
        ("scale_row", 1.2),
        ("mirror", False),
    ],
)
def test_stated_geometry_that_contradicts_the_matrix_is_refused(tmp_path, data, field, value):
    """The matrix is what fusion uses: a hand-edited translation (or mirror, rotation,
    scale) that it ignores would be fused as if it were not there."""
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(_set(data, field, value)))
    with pytest.raises(ConfigError, match=rf"edited\.json: {field.split('[')[0]}: .*contradicts"):
        load_record(path)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"crop": {"x": 5000, "y": 0, "width": 176, "height": 112}}, "crop: the rectangle"),
        ({"crop": {"x": 300, "y": 0, "width": 176, "height": 112}}, "leaves the Phantom frame"),
        ({"phantom_shape": [10**9, 384]}, "phantom_shape: shape"),
        ({"shimadzu_shape": [64, 70000]}, "exceeds 65536 pixels"),
    ],
)
def test_crops_and_shapes_outside_any_camera_are_refused(tmp_path, data, change, words):
    path = tmp_path / "frame.json"
    path.write_text(json.dumps(data | change))
    with pytest.raises(ConfigError, match=r"frame\.json: ") as info:
        load_record(path)
    assert words in str(info.value)
