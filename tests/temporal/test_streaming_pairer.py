"""The live path equals the file path, under any interleaving of the two cameras, and
emits every window at the event that completes its inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xfusion_stream.calibration import StreamingPairer, Window, pairing_table
from xfusion_stream.core import CalibrationError
from xfusion_stream.recorded import PhantomTiming, ShimadzuTiming, read_case, write_case

PHANTOM_CLOCK = 60_252_729_496_560  # 16:44:12.729 496.56 as ns of day
SHIMADZU_CLOCK = 987_654_321
TOL = 10


def scenario(seed: int, *, period: int, n_s: int, n_e: int, pre: int = 3, post: int = 2):
    """Jittered timings: Shimadzu 200 ns frames, Phantom ``period`` ns, E block of n_e."""
    rng = np.random.default_rng(seed)
    s_times = np.arange(n_s, dtype=np.int64) * 200 + rng.integers(-3, 4, n_s)
    s_times -= s_times[0]
    k = np.arange(-pre, n_e + post, dtype=np.int64)
    p_times = k * period + rng.integers(-4, 5, k.size)
    flags = (k >= 0) & (k < n_e)
    p_times -= p_times[pre]
    ph = PhantomTiming(k + 100, p_times, flags, 1e9 / period, 0.0, None)
    return ph, ShimadzuTiming(200, n_s, s_times)


def events(ph: PhantomTiming, sh: ShimadzuTiming, order: str, seed: int = 0) -> list[tuple]:
    p_ev = [
        ("p", i, int(ph.frame_numbers[i]), int(ph.times_ns[i]), bool(ph.e_flags[i]))
        for i in range(ph.n_frames)
    ]
    s_ev = [("s", i, int(t)) for i, t in enumerate(sh.times_ns)]
    if order == "phantom first":
        return p_ev + s_ev
    if order == "shimadzu first":
        return s_ev + p_ev
    if order.startswith("by time"):
        tie = 0 if order.endswith("phantom") else 1
        keyed = [(e[3], tie, n, e) for n, e in enumerate(p_ev)]
        keyed += [(e[2], 1 - tie, n, e) for n, e in enumerate(s_ev)]
        return [e for *_, e in sorted(keyed)]
    rng = np.random.default_rng(seed)  # random merge keeping each camera's order
    picks = rng.permutation([0] * len(p_ev) + [1] * len(s_ev))
    it_p, it_s = iter(p_ev), iter(s_ev)
    return [next(it_s) if pick else next(it_p) for pick in picks]


def feed(pairer: StreamingPairer, evs: list[tuple]) -> dict[Window, int]:
    """Stream the events; the step (event number, len(evs) = finish) of each window."""
    step_of: dict[Window, int] = {}
    for step, ev in enumerate(evs):
        if ev[0] == "p":
            _, pos, number, t, flag = ev
            new = pairer.add_phantom(pos, number, t + PHANTOM_CLOCK, flag)
        else:
            new = pairer.add_shimadzu(ev[1], ev[2] + SHIMADZU_CLOCK)
        step_of.update(dict.fromkeys(new, step))
    step_of.update(dict.fromkeys(pairer.finish(), len(evs)))
    return step_of


def expected_step(w: Window, ph, sh, evs, *, announced: bool) -> int:
    """The event at which the window's last needed input arrived."""
    arrival = {(e[0], e[1]): n for n, e in enumerate(evs)}
    n_s = sh.n_frames

    def shimadzu_ready(s: int) -> int:  # LR frame s+1, or s itself once s is known last
        if s + 1 < n_s:
            return arrival[("s", s + 1)]
        return arrival[("s", s)] if announced else len(evs)

    if w.traverse_mode == "continuous":
        return max(arrival[("p", w.hr[1])], shimadzu_ready(w.shimadzu_index))
    # double: the match of the next matched frame (hr[1]) must be final
    e_next = int(ph.times_ns[w.hr[1]])
    later = np.flatnonzero(sh.times_ns > e_next + TOL)
    if later.size:
        final = arrival[("s", int(later[0]))]
    else:
        final = arrival[("s", n_s - 1)] if announced else len(evs)
    return max(arrival[("p", w.hr[1])], final, shimadzu_ready(w.shimadzu_index))


ORDERS = ["phantom first", "shimadzu first", "by time phantom", "by time shimadzu"] + [
    f"random {k}" for k in range(4)
]
SCENARIOS = {
    "E block inside span": dict(period=1000, n_s=64, n_e=9),
    "E block past span": dict(period=2000, n_s=40, n_e=12),
    "HPV-X2 128 frames": dict(period=4000, n_s=128, n_e=8, pre=5, post=5),
}


@pytest.mark.parametrize("mode", ["continuous", "double"])
@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("announced", [False, True])
def test_stream_equals_file_under_interleavings(mode: str, name: str, announced: bool) -> None:
    ph, sh = scenario(len(name), **SCENARIOS[name])
    table = pairing_table(ph, sh, mode, tolerance_ns=TOL)
    assert len(table) >= 2
    for order in ORDERS:
        evs = events(ph, sh, order, seed=int(order[-1]) if order[-1].isdigit() else 0)
        pairer = StreamingPairer(
            mode, tolerance_ns=TOL, n_shimadzu=sh.n_frames if announced else None
        )
        step_of = feed(pairer, evs)
        emitted = sorted(step_of, key=lambda w: w.index)
        assert tuple(emitted) == table.windows, order
        assert pairer.table() == table
        for w, step in step_of.items():
            assert step == expected_step(w, ph, sh, evs, announced=announced), (order, w)


def test_stream_emits_windows_during_acquisition() -> None:
    """Time-ordered arrival: windows leave well before the stream ends."""
    ph, sh = scenario(3, period=1000, n_s=64, n_e=9)
    evs = events(ph, sh, "by time phantom")
    pairer = StreamingPairer("continuous", n_shimadzu=sh.n_frames)
    steps = feed(pairer, evs)
    assert max(steps.values()) < len(evs) - 1
    first = min(steps, key=lambda w: w.index)
    assert steps[first] < len(evs) // 4


def test_file_path_equals_stream_through_recorded_files(tmp_path: Path) -> None:
    ph, sh = scenario(7, period=1000, n_s=32, n_e=6)
    ph_rounded = (ph.times_ns + 5) // 10 * 10
    case = write_case(
        tmp_path / "case",
        phantom_frames=[np.full((8, 8), i, np.uint16) for i in range(ph.n_frames)],
        phantom_frame_numbers=ph.frame_numbers,
        phantom_times_ns=ph_rounded,
        phantom_e_flags=ph.e_flags,
        phantom_frame_rate_hz=ph.frame_rate_hz,
        shimadzu_frames=[np.zeros((2, 2), np.uint16)] * sh.n_frames,
        shimadzu_times_ns=sh.times_ns,
        shimadzu_frame_ns=sh.frame_ns,
    )
    rec = read_case(case)
    for mode in ("continuous", "double"):
        table = pairing_table(rec.phantom, rec.shimadzu, mode)
        pairer = StreamingPairer(
            mode,
            n_shimadzu=rec.shimadzu.n_frames,
            shimadzu_frame_ns=f"{rec.shimadzu.frame_ns}ns",
            phantom_frame_rate_hz=rec.phantom.frame_rate_hz,
        )
        feed(pairer, events(rec.phantom, rec.shimadzu, "random 1", seed=1))
        assert pairer.table() == table and len(table) > 0


BAD = {
    "no E frames": lambda ph: PhantomTiming(
        ph.frame_numbers, ph.times_ns, np.zeros_like(ph.e_flags), 1e6, 0.0
    ),
    "non-consecutive": lambda ph: PhantomTiming(
        ph.frame_numbers,
        ph.times_ns + np.isin(np.arange(ph.n_frames), [6]) * 60,
        ph.e_flags,
        1e6,
        0.0,
    ),
    "Shimadzu not faster": lambda ph: PhantomTiming(
        ph.frame_numbers, ph.times_ns // 10, ph.e_flags, 1e6, 0.0
    ),
}


@pytest.mark.parametrize(
    "name, mode",
    [
        (n, m)
        for n in BAD
        for m in ("continuous", "double")
        if (n, m) != ("non-consecutive", "continuous")
    ],
)
def test_both_paths_raise_on_bad_timings(mode: str, name: str) -> None:
    ph, sh = scenario(1, period=1000, n_s=64, n_e=9)
    bad = BAD[name](ph)
    with pytest.raises(CalibrationError) as file_err:
        pairing_table(bad, sh, mode)
    for order in ("phantom first", "by time phantom", "random 2"):
        with pytest.raises(CalibrationError) as stream_err:
            feed(StreamingPairer(mode), events(bad, sh, order, seed=2))
        assert str(stream_err.value) == str(file_err.value)
