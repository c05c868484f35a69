"""Recorded-experiment folders: writer -> reader round trip, real-export variants, and
one clear error (file + field) per malformed input."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xfusion_stream.core import RecordedFormatError
from xfusion_stream.recorded import (
    format_phantom_date,
    format_phantom_time,
    frame_header,
    parse_phantom_date,
    parse_phantom_time,
    parse_rec_speed,
    read_case,
    read_frame,
    read_phantom_xml,
    read_shimadzu_ini,
    write_case,
)

N_PHANTOM, N_SHIMADZU = 6, 24
PERIOD_NS = 1000  # Phantom at 1 Mfps, Shimadzu at 5 Mfps (200 ns)


def _case_data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    numbers = np.arange(-2, N_PHANTOM - 2)
    times = numbers * PERIOD_NS + 30  # first E frame (number 0) at 30 ns: shifted by reader
    return dict(
        phantom_frames=[rng.integers(0, 65536, (12, 16), dtype=np.uint16) for _ in numbers],
        phantom_frame_numbers=numbers,
        phantom_times_ns=times,
        phantom_e_flags=numbers >= 0,
        phantom_frame_rate_hz=1e6,
        shimadzu_frames=[rng.integers(0, 65536, (3, 4), dtype=np.uint16) for _ in range(24)],
        shimadzu_times_ns=np.arange(N_SHIMADZU) * 200 + 7,
        shimadzu_frame_ns=200,
    )


@pytest.fixture
def case(tmp_path: Path) -> Path:
    return write_case(tmp_path / "case", **_case_data())


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_round_trip_frames_and_times(tmp_path: Path, suffix: str) -> None:
    data = _case_data(1)
    start = dt.datetime(2023, 10, 24, 23, 59, 59, 999997)  # crosses midnight mid-burst
    read = read_case(write_case(tmp_path / "c", start=start, tiff_suffix=suffix, **data))
    np.testing.assert_array_equal(read.phantom.frame_numbers, data["phantom_frame_numbers"])
    np.testing.assert_array_equal(read.phantom.times_ns, data["phantom_times_ns"] - 30)
    np.testing.assert_array_equal(read.phantom.e_flags, data["phantom_e_flags"])
    assert read.phantom.frame_rate_hz == 1e6 and read.phantom.gamma == 0
    assert read.phantom.dates is not None and read.phantom.dates[-1] == "Wed Oct 25 2023"
    np.testing.assert_array_equal(read.shimadzu.times_ns, np.arange(N_SHIMADZU) * 200)
    assert (read.shimadzu.frame_ns, read.shimadzu.n_frames) == (200, N_SHIMADZU)
    assert read.phantom_shape == (12, 16) and read.shimadzu_shape == (3, 4)
    assert all(p.suffix == suffix for p in read.phantom_frames + read.shimadzu_frames)
    for path, frame in zip(read.phantom_frames, data["phantom_frames"]):
        np.testing.assert_array_equal(read_frame(path), frame)
    for path, frame in zip(read.shimadzu_frames, data["shimadzu_frames"]):
        assert read_frame(path).dtype == np.uint16
        np.testing.assert_array_equal(read_frame(path), frame)


def test_writer_rounds_phantom_times_to_10ns(tmp_path: Path) -> None:
    data = _case_data()
    data["phantom_times_ns"] = data["phantom_times_ns"] + np.array([4, -4, 5, 0, 14, 16])
    read = read_case(write_case(tmp_path / "c", **data))
    expected = (data["phantom_times_ns"] + 5) // 10 * 10
    np.testing.assert_array_equal(read.phantom.times_ns, expected - expected[2])


def test_time_and_date_text_from_design() -> None:
    ns, flag = parse_phantom_time("16:44:12.729 496.56 E")
    assert flag is True
    assert ns == (16 * 3600 + 44 * 60 + 12) * 10**9 + 729_496_560
    assert parse_phantom_time("16:44:12.729 496.56") == (ns, False)
    assert parse_phantom_time("  00:00:00.000 000.01 E\r\n") == (10, True)
    assert format_phantom_time(ns, True) == "16:44:12.729 496.56 E"
    assert parse_phantom_date("Tue Oct 24 2023") == dt.date(2023, 10, 24)
    assert format_phantom_date(dt.date(2023, 10, 24)) == "Tue Oct 24 2023"
    assert parse_rec_speed("200ns") == 200 and parse_rec_speed("50 NS") == 50


@pytest.mark.parametrize(
    "text",
    ["16:44:12.729 496.5 E", "16:44:12.729496.56", "16:44:12.729 496.56 X", "25:00:00.000 000.00"],
)
def test_bad_time_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_phantom_time(text)


@pytest.mark.parametrize("text", ["200us", "200", "0.2 us", "1.5ns", "fast"])
def test_rec_speed_must_be_whole_ns(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rec_speed(text)


VARIANT_XML = """\ufeff<?xml version="1.0" encoding="utf-8"?>\r
<chd xmlns="http://example.invalid/phantom">\r
  <CineFileHeader><ImageCount>4</ImageCount></CineFileHeader>\r
  <CameraSetup><FrameRate>100000</FrameRate><ImProc><Gamma>2.2</Gamma></ImProc><Gamma>0.0</Gamma><Extra a="1"/>\r
    <FrameRateDouble>100000.000000</FrameRateDouble></CameraSetup>\r
  <TIMEBLOCK><Block>\r
    <Date frame="-1">Tue Oct 24 2023</Date><Time frame="-1">16:44:12.729 486.56</Time>\r
    <Date frame="0">Tue Oct 24 2023</Date><Time frame="0">16:44:12.729 496.56 E</Time>\r
    <Date frame="1">Tue Oct 24 2023</Date><Time frame="1">16:44:12.729 506.56 E</Time>\r
    <Date frame="2">Tue Oct 24 2023</Date><Time frame="2">16:44:12.729 516.57</Time>\r
  </Block></TIMEBLOCK>\r
  <EXPOSUREBLOCK><Exposure frame="0">1.0</Exposure></EXPOSUREBLOCK>\r
</chd>\r
"""

VARIANT_INI = (
    "\ufeff; exported by HPV-X2\r\n[GENERAL]\r\nOperator=someone\r\n[REC_INFO]\r\n"
    "RecSpeed = 200ns\r\nRecFrame=3\r\nTrigger=Internal\r\n[IMAGE_INFO_1]\r\n"
    "ImageRelative=0\r\nGain=1\r\n[IMAGE_INFO_2]\r\nImageRelative=200\r\n"
    "[IMAGE_INFO_3]\r\nImageRelative=400 ns\r\n[FOOTER]\r\nx=y\r\n"
)


def test_variant_xml_accepted(tmp_path: Path) -> None:
    path = tmp_path / "v.xml"
    path.write_bytes(VARIANT_XML.encode("utf-8"))
    timing = read_phantom_xml(path)
    np.testing.assert_array_equal(timing.frame_numbers, [-1, 0, 1, 2])
    np.testing.assert_array_equal(timing.times_ns, [-10_000, 0, 10_000, 20_010])
    np.testing.assert_array_equal(timing.e_flags, [False, True, True, False])
    assert timing.frame_rate_hz == 1e5


def test_xml_without_dates_uppercase_frame_and_midnight(tmp_path: Path) -> None:
    path = tmp_path / "v.xml"
    path.write_text(
        "<chd><CameraSetup><FrameRateDouble>1e5</FrameRateDouble><Gamma>0</Gamma></CameraSetup>"
        '<TIMEBLOCK><Time Frame="7">23:59:59.999 990.00 E</Time>'
        '<Time Frame="8">00:00:00.000 000.00 E</Time></TIMEBLOCK></chd>'
    )
    timing = read_phantom_xml(path)
    assert timing.dates is None
    np.testing.assert_array_equal(timing.times_ns, [0, 10_000])


def test_variant_ini_accepted(tmp_path: Path) -> None:
    path = tmp_path / "v.ini"
    path.write_bytes(VARIANT_INI.encode("utf-8"))
    timing = read_shimadzu_ini(path)
    assert (timing.frame_ns, timing.n_frames) == (200, 3)
    np.testing.assert_array_equal(timing.times_ns, [0, 200, 400])


def test_shimadzu_names_ending_in_a_shared_number_are_read_in_order(case: Path) -> None:
    """``case_000001_cam1.tif``: the last number is the camera's, not the frame's."""
    for p in _shimadzu_dir(case).glob("*.tif"):
        p.rename(p.with_name(p.stem + "_cam1.tif"))
    assert len(read_case(case).shimadzu_frames) == 24


def test_variant_case_layout(case: Path) -> None:
    """Renamed .tiff Phantom files, CRLF/BOM files and unrelated extras are accepted."""
    for p in (case / "phantom").glob("img_*.tif"):
        p.rename(p.with_suffix(".tiff"))
    xml = case / "phantom" / "case.xml"
    xml.write_bytes(b"\xef\xbb\xbf" + xml.read_bytes().replace(b"\n", b"\r\n"))
    (case / "phantom" / "notes.txt").write_text("beamtime notes")
    (case / "truth.json").write_text("{}")
    (case / "analysis").mkdir()
    read = read_case(case)
    assert len(read.phantom_frames) == N_PHANTOM and read.phantom.times_ns[2] == 0


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_bytes().decode("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_bytes(text.replace(old, new, count).encode("utf-8"))


def _day_later_from(path: Path, marker: str) -> None:
    """Every date from ``marker`` on a day later (Tue Oct 24 -> Wed Oct 25)."""
    head, tail = path.read_text().split(marker, 1)
    path.write_text(head + marker + tail.replace("Tue Oct 24 2023", "Wed Oct 25 2023"))


def _xml(case: Path) -> Path:
    return case / "phantom" / "case.xml"


def _ini(case: Path) -> Path:
    return case / "case.ini"


def _shimadzu_dir(case: Path) -> Path:
    return case / "TIFF16" / "case"


MALFORMED = {
    "missing RecSpeed": (lambda c: _edit(_ini(c), "RecSpeed=200ns", ""), "case.ini", "RecSpeed"),
    "RecSpeed in us": (lambda c: _edit(_ini(c), "200ns", "0.2us"), "case.ini", "RecSpeed"),
    "missing RecFrame": (lambda c: _edit(_ini(c), "RecFrame=24", ""), "case.ini", "RecFrame"),
    "RecFrame != sections": (
        lambda c: _edit(_ini(c), "RecFrame=24", "RecFrame=23"),
        "case.ini",
        "RecFrame",
    ),
    "missing ImageRelative": (
        lambda c: _edit(_ini(c), "ImageRelative=400", "Gain=1"),
        "case.ini",
        "IMAGE_INFO_3/ImageRelative",
    ),
    "ImageRelative goes back": (
        lambda c: _edit(_ini(c), "ImageRelative=400", "ImageRelative=100"),
        "case.ini",
        "IMAGE_INFO_3/ImageRelative",
    ),
    "missing REC_INFO": (lambda c: _edit(_ini(c), "[REC_INFO]", "[REC]"), "case.ini", "REC_INFO"),
    "not an INI": (lambda c: _ini(c).write_text("RecSpeed=200ns\n"), "case.ini", "INI"),
    "extra Shimadzu TIFF": (
        lambda c: shutil.copy(_shimadzu_dir(c) / "case_000001.tif", _shimadzu_dir(c) / "x.tif"),
        "case.ini",
        "RecFrame",
    ),
    "two INIs": (lambda c: shutil.copy(_ini(c), c / "other.ini"), "case", "Shimadzu INI"),
    "no TIFF16": (lambda c: shutil.rmtree(c / "TIFF16"), "case", "TIFF16"),
    "two TIFF16 subdirs": (lambda c: (c / "TIFF16" / "b").mkdir(), "TIFF16", "TIFF16/<subdir>"),
    "Shimadzu uint8": (
        lambda c: tifffile.imwrite(
            _shimadzu_dir(c) / "case_000005.tif", np.zeros((3, 4), np.uint8)
        ),
        "case_000005.tif",
        "Shimadzu image",
    ),
    "Shimadzu shape": (
        lambda c: tifffile.imwrite(
            _shimadzu_dir(c) / "case_000005.tif", np.zeros((3, 5), np.uint16)
        ),
        "case_000005.tif",
        "Shimadzu image",
    ),
    "Phantom shape": (
        lambda c: tifffile.imwrite(c / "phantom" / "img_000003.tif", np.zeros((12, 15), np.uint16)),
        "img_000003.tif",
        "Phantom image",
    ),
    "Phantom RGB": (
        lambda c: tifffile.imwrite(
            c / "phantom" / "img_000003.tif", np.zeros((12, 16, 3), np.uint16)
        ),
        "img_000003.tif",
        "image",
    ),
    "Gamma != 0": (lambda c: _edit(_xml(c), "<Gamma>0<", "<Gamma>1.2<"), "case.xml", "Gamma"),
    "missing FrameRateDouble": (
        lambda c: _edit(_xml(c), "FrameRateDouble>1000000.0</FrameRateDouble", "X/"),
        "case.xml",
        "FrameRateDouble",
    ),
    "no E frames": (lambda c: _edit(_xml(c), " E<", "<", 10), "case.xml", "TIMEBLOCK/Time"),
    "Phantom count": (
        lambda c: (c / "phantom" / "img_000005.tif").unlink(),
        "case.xml",
        "TIMEBLOCK/Time",
    ),
    "bad time text": (
        lambda c: _edit(_xml(c), "16:44:12.729 496.", "16:44:12,729 496."),
        "case.xml",
        "Time[Frame=0]",
    ),
    "bad date text": (
        lambda c: _edit(_xml(c), "Tue Oct 24 2023", "2023-10-24"),
        "case.xml",
        "Date[Frame=-2]",
    ),
    "time goes back": (
        lambda c: _edit(_xml(c), "16:44:12.729 498.", "16:44:12.729 400."),
        "case.xml",
        "Time[Frame=2]",
    ),
    "missing Frame attribute": (
        lambda c: _edit(_xml(c), '<Time frame="1">', "<Time>"),
        "case.xml",
        "TIMEBLOCK/Time",
    ),
    "not XML": (lambda c: _edit(_xml(c), "</chd>", "</ch"), "case.xml", "XML"),
    "entity": (
        lambda c: _edit(_xml(c), "<chd>", '<!DOCTYPE chd [<!ENTITY a "b">]><chd>'),
        "case.xml",
        "DOCTYPE",
    ),
    "two XMLs": (
        lambda c: shutil.copy(_xml(c), c / "phantom" / "other.xml"),
        "phantom",
        "Phantom XML",
    ),
    "no Phantom folder": (lambda c: shutil.rmtree(c / "phantom"), "case", "Phantom folder"),
    # numbers out of any camera's range: each once overflowed the arithmetic (a traceback)
    "frame rate near zero": (
        lambda c: _edit(_xml(c), "FrameRateDouble>1000000.0<", "FrameRateDouble>1e-300<"),
        "case.xml",
        "FrameRateDouble",
    ),
    "frame rate beyond any camera": (
        lambda c: _edit(_xml(c), "FrameRateDouble>1000000.0<", "FrameRateDouble>1e300<"),
        "case.xml",
        "FrameRateDouble",
    ),
    "Frame attribute of 30 digits": (
        lambda c: _edit(_xml(c), '<Time frame="1">', '<Time frame="' + "9" * 30 + '">'),
        "case.xml",
        "TIMEBLOCK/Time",
    ),
    "dates years apart": (
        lambda c: _edit(_xml(c), "Tue Oct 24 2023", "Fri Dec 31 9999", 2),
        "case.xml",
        "TIMEBLOCK/Date",
    ),
    "unknown XML encoding": (
        lambda c: _edit(_xml(c), 'encoding="utf-8"', 'encoding="no-such-codec"'),
        "case.xml",
        "XML",
    ),
    "RecSpeed of 400 digits": (
        lambda c: _edit(_ini(c), "200ns", "1" + "0" * 400 + "ns"),
        "case.ini",
        "RecSpeed",
    ),
    "ImageRelative of 400 digits": (
        lambda c: _edit(_ini(c), "ImageRelative=400", "ImageRelative=1" + "0" * 400),
        "case.ini",
        "IMAGE_INFO_3/ImageRelative",
    ),
    "ImageRelative past int64": (
        lambda c: _edit(_ini(c), "ImageRelative=400", "ImageRelative=" + "9" * 20),
        "case.ini",
        "IMAGE_INFO_3/ImageRelative",
    ),
    "entity in UTF-16": (
        lambda c: _xml(c).write_bytes(
            _xml(c)
            .read_text()
            .replace('encoding="utf-8"', 'encoding="utf-16"')
            .replace("<chd>", '<!DOCTYPE chd [<!ENTITY z "0">]><chd>')
            .encode("utf-16")
        ),
        "case.xml",
        "DOCTYPE",
    ),
    "FIFO named like the XML": (
        lambda c: (_xml(c).unlink(), os.mkfifo(_xml(c))),
        "case.xml",
        "file",
    ),
    # a frame missing, and the count made up past the end: every later frame would be
    # paired with its neighbour's time
    "Phantom numbering gap": (
        lambda c: (
            (c / "phantom" / "img_000003.tif").unlink(),
            shutil.copy(c / "phantom" / "img_000005.tif", c / "phantom" / "img_000006.tif"),
        ),
        "img_000004.tif",
        "Phantom frames",
    ),
    "Phantom frame renamed before the first": (
        lambda c: (c / "phantom" / "img_000005.tif").rename(c / "phantom" / "img_-00001.tif"),
        "img_-00001.tif",
        "Phantom frames",
    ),
    "Shimadzu numbering gap": (
        lambda c: (
            (_shimadzu_dir(c) / "case_000012.tif").unlink(),
            shutil.copy(_shimadzu_dir(c) / "case_000024.tif", _shimadzu_dir(c) / "case_000025.tif"),
        ),
        "case_000013.tif",
        "Shimadzu frames",
    ),
    "E flag apart from the E run": (
        lambda c: _edit(_xml(c), "16:44:12.729 494.03<", "16:44:12.729 494.03 E<"),
        "case.xml",
        "TIMEBLOCK/Time[Frame=0]",
    ),
    # declared frame times that contradict the recorded ones: which one is wrong?
    "RecSpeed 4x the ImageRelative steps": (
        lambda c: _edit(_ini(c), "RecSpeed=200ns", "RecSpeed=800ns"),
        "case.ini",
        "IMAGE_INFO_2/ImageRelative",
    ),
    "FrameRateDouble 4x the Time steps": (
        lambda c: _edit(_xml(c), "FrameRateDouble>1000000.0<", "FrameRateDouble>4000000.0<"),
        "case.xml",
        "TIMEBLOCK/Time[Frame=1]",
    ),
    "Date jumps a day inside the E run": (
        lambda c: _day_later_from(_xml(c), '<Date frame="1">'),
        "case.xml",
        "TIMEBLOCK/Time[Frame=1]",
    ),
    "IMAGE_INFO_0 beside 1..24": (
        lambda c: _ini(c).write_text(
            _ini(c).read_text() + "\n[IMAGE_INFO_0]\nImageRelative=-200\n"
        ),
        "case.ini",
        "IMAGE_INFO_0",
    ),
    "IMAGE_INFO numbered 10**12": (
        lambda c: _edit(_ini(c), "[IMAGE_INFO_24]", "[IMAGE_INFO_1000000000000]"),
        "case.ini",
        "IMAGE_INFO_24",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_case_names_file_and_field(case: Path, name: str) -> None:
    mutate, file_name, field = MALFORMED[name]
    mutate(case)
    with pytest.raises(RecordedFormatError) as info:
        read_case(case)
    err = info.value
    assert Path(err.path).name == file_name, str(err)
    assert field in err.field, str(err)
    assert str(err).startswith(err.path)


def test_read_frame_rejects_float(tmp_path: Path) -> None:
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.float32))
    with pytest.raises(RecordedFormatError, match="uint16"):
        read_frame(path)
    tifffile.imwrite(path, np.ones((1, 4, 5), np.uint16))
    assert read_frame(path).shape == (4, 5)


@pytest.mark.parametrize(
    "damage",
    [
        "4-byte header",
        "8-byte BigTIFF header",
        "first page past the end",
        "FIFO",
        "device",
        "pages of two shapes",
        "stack",
    ],
)
def test_a_frame_file_that_is_no_single_tiff_page_is_named(
    tmp_path: Path, damage: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each of these once escaped as a traceback (struct.error), blocked the reader for
    ever (a FIFO), or was read as its first page and nothing said."""
    path = tmp_path / "img_000003.tif"
    if damage == "4-byte header":
        path.write_bytes(b"II*\x00")
    elif damage == "8-byte BigTIFF header":
        path.write_bytes(b"II+\x00\x08\x00\x00\x00")
    elif damage == "first page past the end":
        path.write_bytes(b"II*\x00\x08\x00\x00\x00")
    elif damage == "FIFO":
        os.mkfifo(path)
    elif damage == "device":
        path.symlink_to("/dev/zero")
    elif damage == "pages of two shapes":
        tifffile.imwrite(path, np.zeros((4, 5), np.uint16))
        tifffile.imwrite(path, np.zeros((6, 7), np.uint16), append=True)
    else:
        tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint16))
    for read in (read_frame, frame_header):
        with pytest.raises(RecordedFormatError) as info:
            read(path)
        assert Path(info.value.path) == path and info.value.field == "image", str(info.value)
        assert str(info.value).count(path.name) == 1, str(info.value)  # said once
    assert capfd.readouterr().err == ""  # and only by us (not also by tifffile's logger)


def test_writer_refuses_inconsistent_input(tmp_path: Path) -> None:
    data = _case_data()
    data["phantom_e_flags"] = np.zeros(N_PHANTOM, bool)
    with pytest.raises(ValueError, match="e_flags"):
        write_case(tmp_path / "a", **data)
    data = _case_data()
    data["shimadzu_frames"] = data["shimadzu_frames"][:-1]
    with pytest.raises(ValueError, match="Shimadzu"):
        write_case(tmp_path / "b", **data)
    write_case(tmp_path / "c", **_case_data())
    with pytest.raises(FileExistsError):
        write_case(tmp_path / "c", **_case_data())
