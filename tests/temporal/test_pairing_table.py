"""Pairing tables on hand-checkable synthetic timings, and every temporal error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xfusion_stream.calibration import (
    PairingTable,
    StreamingPairer,
    Window,
    frame_time_ns,
    pairing_table,
)
from xfusion_stream.core import CalibrationError
from xfusion_stream.recorded import PhantomTiming, ShimadzuTiming


def phantom(times, e_flags, *, rate=1e6, gamma=0.0) -> PhantomTiming:
    times = np.asarray(times, dtype=np.int64)
    flags = np.asarray(e_flags, dtype=bool)
    first_e = times[np.argmax(flags)] if flags.any() else 0
    numbers = np.arange(times.size, dtype=np.int64) - 2
    return PhantomTiming(numbers, times - first_e, flags, rate, gamma, None)


def shimadzu(n: int, frame_ns: int = 200) -> ShimadzuTiming:
    return ShimadzuTiming(frame_ns, n, np.arange(n, dtype=np.int64) * frame_ns)


# Phantom at 1 Mfps: positions 0..7, E on positions 2..5 (times 0, 1000, 2000, 3000 ns)
P_TIMES = np.arange(-2, 6) * 1000
P_FLAGS = [False, False, True, True, True, True, False, False]


def test_continuous_small_case_by_hand() -> None:
    table = pairing_table(phantom(P_TIMES, P_FLAGS), shimadzu(20), "continuous")
    assert table.traverse_mode == "continuous" and len(table) == 15  # t = 0..2800 < 3000
    w = table.windows
    assert w[0] == Window(0, "continuous", 0, 0, (0, 0, 1), (2, 3), None)
    assert w[4] == Window(4, "continuous", 4, 800, (3, 4, 5), (2, 3), None)
    assert w[5] == Window(5, "continuous", 5, 1000, (4, 5, 6), (3, 4), None)
    assert w[14] == Window(14, "continuous", 14, 2800, (13, 14, 15), (4, 5), None)
    assert [x.shimadzu_index for x in w] == list(range(15))


def test_continuous_clamps_lr_at_the_last_shimadzu_frame() -> None:
    table = pairing_table(phantom(P_TIMES, P_FLAGS), shimadzu(10), "continuous")
    assert len(table) == 10
    assert table.windows[-1].lr == (8, 9, 9) and table.windows[-1].hr == (3, 4)


def test_double_small_case_by_hand() -> None:
    # 7 ns clock jitter: still within the 10 ns tolerance
    jitter = np.array([0, 0, 0, 7, -7, 7, 0, 0])
    table = pairing_table(phantom(P_TIMES + jitter, P_FLAGS), shimadzu(20), "double")
    assert table.windows == (
        Window(0, "double", 5, 1000, (4, 5, 6), (2, 4), 3),
        Window(1, "double", 10, 2000, (9, 10, 11), (3, 5), 4),
    )


def test_double_ignores_e_frames_outside_the_shimadzu_span() -> None:
    times = np.arange(-2, 10) * 1000
    flags = [False, False] + [True] * 10  # E frames at 0..9000 ns; Shimadzu ends at 3800
    table = pairing_table(phantom(times, flags), shimadzu(20), "double")
    assert [w.truth for w in table.windows] == [3, 4]


def test_double_uses_jittered_times_nearest_within_tolerance() -> None:
    s_times = np.arange(20, dtype=np.int64) * 200 + np.array([0, 3, -2, 4] * 5)
    shim = ShimadzuTiming(200, 20, s_times - s_times[0])
    p_times = P_TIMES + np.array([0, 0, 0, -6, 5, -5, 0, 0])
    table = pairing_table(phantom(p_times, P_FLAGS), shim, "double")
    assert [(w.shimadzu_index, w.truth) for w in table.windows] == [(5, 3), (10, 4)]


def test_csv_round_trip(tmp_path: Path) -> None:
    for mode in ("continuous", "double"):
        table = pairing_table(phantom(P_TIMES, P_FLAGS), shimadzu(20), mode)
        path = table.to_csv(tmp_path / f"{mode}.csv")
        assert PairingTable.from_csv(path) == table
        rows = table.as_rows()
        assert rows[0]["traverse_mode"] == mode and set(rows[0]) >= {"lr_prev", "hr_after", "truth"}
    assert "truth" in path.read_text().splitlines()[0]


def test_frame_time_ns() -> None:
    assert frame_time_ns("200ns") == 200 and frame_time_ns(np.int64(50)) == 50


ERRORS = {
    "gamma": lambda: pairing_table(
        phantom(P_TIMES, P_FLAGS, gamma=1.0), shimadzu(20), "continuous"
    ),
    "no E frames": lambda: pairing_table(phantom(P_TIMES, [False] * 8), shimadzu(20), "continuous"),
    "non-ns frame time (float)": lambda: pairing_table(
        phantom(P_TIMES, P_FLAGS), ShimadzuTiming(200.5, 20, np.arange(20) * 200), "continuous"
    ),
    "non-ns frame time (text)": lambda: frame_time_ns("0.2us"),
    "Shimadzu not faster (declared)": lambda: pairing_table(
        phantom(P_TIMES, P_FLAGS, rate=5e6), shimadzu(20), "continuous"
    ),
    "Shimadzu not faster (observed)": lambda: pairing_table(
        phantom(np.arange(-2, 6) * 150, P_FLAGS), shimadzu(20), "continuous"
    ),
    "non-consecutive matches": lambda: pairing_table(
        phantom(P_TIMES + np.array([0, 0, 0, 0, 50, 0, 0, 0]), P_FLAGS), shimadzu(20), "double"
    ),
    "too few matches": lambda: pairing_table(
        phantom(P_TIMES + np.array([0, 0, 0, 13, 13, 13, 0, 0]), P_FLAGS), shimadzu(20), "double"
    ),
    "too few matches (short Shimadzu)": lambda: pairing_table(
        phantom(P_TIMES, P_FLAGS), shimadzu(8), "double"
    ),
    "no continuous window": lambda: pairing_table(
        phantom(P_TIMES, [False, False, True] + [False] * 5), shimadzu(20), "continuous"
    ),
    "tolerance too large": lambda: pairing_table(
        phantom(P_TIMES, P_FLAGS), shimadzu(20), "double", tolerance_ns=100
    ),
    "negative tolerance": lambda: pairing_table(
        phantom(P_TIMES, P_FLAGS), shimadzu(20), "double", tolerance_ns=-1
    ),
    "unknown mode": lambda: pairing_table(phantom(P_TIMES, P_FLAGS), shimadzu(20), "triple"),
    "Phantom times not increasing": lambda: pairing_table(
        PhantomTiming(
            np.arange(8), np.array([0, 1, 1, 2, 3, 4, 5, 6]) * 1000, np.ones(8, bool), 1e6, 0.0
        ),
        shimadzu(20),
        "continuous",
    ),
}

MESSAGES = {
    "gamma": "Gamma",
    "no E frames": "E-flagged",
    "non-ns frame time (float)": "whole number of ns",
    "non-ns frame time (text)": "not ns",
    "Shimadzu not faster (declared)": "not faster",
    "Shimadzu not faster (observed)": "not faster",
    "non-consecutive matches": "not consecutive",
    "too few matches": "need at least 3",
    "too few matches (short Shimadzu)": "need at least 3",
    "no continuous window": "no Shimadzu frame lies between",
    "tolerance too large": "half the Shimadzu frame",
    "negative tolerance": "negative",
    "unknown mode": "traverse mode",
    "Phantom times not increasing": "strictly increasing",
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_temporal_errors(name: str) -> None:
    with pytest.raises(CalibrationError, match=MESSAGES[name]):
        ERRORS[name]()


STREAM_ERRORS = {
    "gamma": (dict(phantom_gamma=0.5), "Gamma"),
    "non-ns frame time": (dict(shimadzu_frame_ns="200us"), "not ns"),
    "Shimadzu not faster": (dict(shimadzu_frame_ns=2000, phantom_frame_rate_hz=1e6), "faster"),
    "tolerance": (dict(traverse_mode="double", tolerance_ns=150, shimadzu_frame_ns=200), "half"),
}


@pytest.mark.parametrize("name", list(STREAM_ERRORS))
def test_streaming_pairer_checks_descriptor_values(name: str) -> None:
    kwargs, message = STREAM_ERRORS[name]
    kwargs = {"traverse_mode": "continuous", **kwargs}
    with pytest.raises(CalibrationError, match=message):
        StreamingPairer(**kwargs)


def test_streaming_pairer_rejects_out_of_order_frames() -> None:
    pairer = StreamingPairer("continuous")
    pairer.add_shimadzu(0, 100)
    with pytest.raises(CalibrationError, match="expected 1"):
        pairer.add_shimadzu(2, 500)
    pairer.add_phantom(0, -1, 10_000, False)
    with pytest.raises(CalibrationError, match="not after"):
        pairer.add_phantom(1, 0, 9_000, True)
    announced = StreamingPairer("continuous", n_shimadzu=1)
    announced.add_shimadzu(0, 0)
    with pytest.raises(CalibrationError, match="beyond"):
        announced.add_shimadzu(1, 200)


def test_streaming_pairer_finish_errors() -> None:
    short = StreamingPairer("continuous", n_shimadzu=5)
    short.add_shimadzu(0, 0)
    short.add_phantom(0, 0, 0, True)
    with pytest.raises(CalibrationError, match="1 of 5"):
        short.finish()
    no_e = StreamingPairer("double")
    no_e.add_shimadzu(0, 0)
    no_e.add_phantom(0, 0, 0, False)
    with pytest.raises(CalibrationError, match="E-flagged"):
        no_e.finish()
    done = StreamingPairer("continuous")
    for s in range(5):
        done.add_shimadzu(s, 200 * s)
    done.add_phantom(0, 0, 0, True)
    done.add_phantom(1, 1, 1000, True)
    done.finish()
    with pytest.raises(CalibrationError, match="already finished"):
        done.add_shimadzu(5, 1000)
