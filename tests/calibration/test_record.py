"""Calibration records: round trip, validation errors, original import, bluesky run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from event_model import DocumentNames, schema_validators

from xfusion_stream.calibration import (
    CalibrationRecord,
    decompose_matrix,
    import_original,
    load_record,
    record_to_documents,
)
from xfusion_stream.core import CalibrationError, ConfigError, InterCameraTransform

SHIMADZU, PHANTOM = (64, 96), (256, 384)
TRANSFORM = InterCameraTransform(
    rotation_deg=1.7, translation_px=(4.0, -6.5), scale_col=1.02, scale_row=0.985
)


@pytest.fixture
def record() -> CalibrationRecord:
    return CalibrationRecord.from_transform(TRANSFORM, SHIMADZU, PHANTOM, source="truth")


def test_from_transform_matches_the_optics_convention(record: CalibrationRecord) -> None:
    np.testing.assert_allclose(record.matrix_array(), TRANSFORM.matrix(SHIMADZU, PHANTOM))
    assert record.transform() == TRANSFORM
    back = decompose_matrix(record.matrix_array(), SHIMADZU, PHANTOM, 4, True)
    assert back.rotation_deg == pytest.approx(1.7)
    assert back.scale_col == pytest.approx(1.02)
    assert back.scale_row == pytest.approx(0.985)
    assert back.translation_px == pytest.approx((4.0, -6.5))
    assert record.crop.width % 16 == 0 and record.crop.height % 16 == 0


def test_json_and_yaml_round_trip(tmp_path, record: CalibrationRecord) -> None:
    path = record.save(tmp_path / "cal.json")
    again = load_record(path)
    assert again == record
    assert json.loads(path.read_text())["schema_version"] == 1
    yaml_path = tmp_path / "cal.yaml"
    yaml_path.write_text(yaml.safe_dump(record.model_dump(mode="json")))
    assert load_record(yaml_path) == record


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"matrix": [[1.0, 0.0], [0.0, 1.0]]}, "matrix"),
        ({"matrix": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 1.0]]}, "matrix"),
        ({"scale_row": -1.0}, "scale_row"),
        ({"crop": {"x": 0, "y": 0, "width": 0, "height": 16}}, "crop.width"),
        ({"shimadzu_shape": [0, 5]}, "shimadzu_shape"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_records_name_file_and_field(tmp_path, record, change, field) -> None:
    data = record.model_dump(mode="json") | change
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_record(path)
    assert str(path) in str(info.value)
    assert field in str(info.value)


def test_missing_field_and_version_and_file(tmp_path, record) -> None:
    data = record.model_dump(mode="json")
    del data["crop"]
    path = tmp_path / "nocrop.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="crop"):
        load_record(path)
    path.write_text(json.dumps(record.model_dump(mode="json") | {"schema_version": 99}))
    with pytest.raises(ConfigError, match="schema_version"):
        load_record(path)
    with pytest.raises(ConfigError, match="not found"):
        load_record(tmp_path / "absent.json")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        load_record(path)


def _original_files(tmp_path, transform: InterCameraTransform, shape_2x3: bool):
    """What the original's pipeline would have stored for ``transform`` (our assumption)."""
    m = transform.matrix(SHIMADZU, PHANTOM)
    w_hr = SHIMADZU[1] * 4
    flip = np.array([[-1.0, 0.0, w_hr - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    fx, fy = transform.scale_col, transform.scale_row
    resize = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
    tfm = m @ np.linalg.inv(flip) @ np.linalg.inv(resize)
    np.save(tmp_path / "tfm_0.npy", tfm[:2] if shape_2x3 else tfm)
    np.save(tmp_path / "scale_factor_0.npy", np.array([fx, fy]))
    return tmp_path / "tfm_0.npy", tmp_path / "scale_factor_0.npy"


@pytest.mark.parametrize("shape_2x3", [True, False])
def test_import_original(tmp_path, shape_2x3: bool) -> None:
    tfm, scale = _original_files(tmp_path, TRANSFORM, shape_2x3)
    record = import_original(tfm, scale, SHIMADZU, PHANTOM)
    np.testing.assert_allclose(
        record.matrix_array(), TRANSFORM.matrix(SHIMADZU, PHANTOM), atol=1e-9
    )
    assert record.rotation_deg == pytest.approx(1.7)
    assert record.scale_col == pytest.approx(1.02)
    assert record.translation_px == pytest.approx((4.0, -6.5))
    assert record.source.startswith("original:")


def test_import_original_rejects_bad_arrays(tmp_path) -> None:
    np.save(tmp_path / "tfm.npy", np.eye(4))
    np.save(tmp_path / "scale.npy", np.array([1.0, 1.0]))
    with pytest.raises(CalibrationError, match="tfm.npy"):
        import_original(tmp_path / "tfm.npy", tmp_path / "scale.npy", SHIMADZU, PHANTOM)
    np.save(tmp_path / "tfm.npy", np.eye(3))
    np.save(tmp_path / "scale.npy", np.array([1.0, -1.0, 2.0]))
    with pytest.raises(CalibrationError, match="scale.npy"):
        import_original(tmp_path / "tfm.npy", tmp_path / "scale.npy", SHIMADZU, PHANTOM)


def test_record_as_bluesky_run(record: CalibrationRecord) -> None:
    docs = record_to_documents(record)
    assert [name for name, _ in docs] == ["start", "stop"]
    for name, doc in docs:
        schema_validators[DocumentNames[name]].validate(doc)
    start = docs[0][1]
    assert start["uid"] == record.uid
    assert CalibrationRecord.model_validate(start["calibration"]) == record
