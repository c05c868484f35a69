"""Issue 12: no terminal control codes in log files.

A progress bar redraws itself with carriage returns and, several bars at once, ANSI
cursor moves. Where stderr is a file or a pipe every bar of a command becomes plain,
newline-terminated lines: a bar's first state, one line every ``XFUSION_PROGRESS_EVERY``
seconds, and its last (``n/n``) state.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading

from xfusion_stream.app._progress import PlainLines, plain_unless_tty
from xfusion_stream.cli._logging import command_handler

CLI = [sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())"]
SIM = ["--frames", "24", "--shimadzu-shape", "16", "24", "--phantom-every", "4"]


def _clean(text: str) -> None:
    assert "\r" not in text and "\x1b[" not in text and "\x1b" not in text


def test_a_real_command_with_stderr_in_a_file_writes_plain_lines(tmp_path):
    """``xfusion calibrate`` (a tqdm bar drawn by the calibration library) with stderr
    redirected to a log file, as a service manager or ``2> log`` does."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    made = subprocess.run(
        [*CLI, "simulate", "--out", str(tmp_path), "--frames", "24", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    log = tmp_path / "calibrate.log"
    with log.open("w") as stderr:
        proc = subprocess.run(
            [*CLI, "calibrate", "--cal_dir", str(tmp_path), "--cal_id", "sim_calibration_grid"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            timeout=300,
        )
    assert proc.returncode == 0, log.read_text()[-2000:]
    text = log.read_text()
    _clean(text)
    lines = [line for line in text.splitlines() if line.startswith("grid calibration:")]
    assert "0/4" in lines[0] and "4/4" in lines[-1], text  # first and last state, as lines
    assert "xfusion calibrate: done" in proc.stdout  # stdout: the summary, untouched


def test_a_real_command_with_stderr_in_a_pipe_writes_plain_lines(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XFUSION_PROGRESS_EVERY": "0"}
    proc = subprocess.run(
        [*CLI, "simulate", "--out", str(tmp_path / "sim"), "--json", *SIM],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    _clean(proc.stderr)
    assert "shimadzu:   0%" in proc.stderr and "0/24" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1


def test_tqdm_bars_log_lines_and_threads_through_plain_lines():
    """Two bars at once (tqdm moves the cursor between them), log lines in between,
    from two threads: plain lines only, each bar's first and last state, few lines."""
    from tqdm import tqdm

    out = io.StringIO()
    plain = PlainLines(out, every=3600)
    handler = command_handler("demo", plain)
    logger = logging.getLogger("xfusion_stream.test_plain_progress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def fused() -> None:
        with tqdm(total=50, desc="fused", unit="frame", file=plain, mininterval=0) as bar:
            for _ in range(50):
                bar.update(1)

    try:
        with tqdm(total=40, desc="acquired", unit="frame", file=plain, mininterval=0) as bar:
            worker = threading.Thread(target=fused)
            worker.start()
            for i in range(40):
                bar.update(1)
                if i == 20:
                    logger.info("half way")
            worker.join()
        with tqdm(desc="spooled", unit="doc", file=plain, mininterval=0, leave=False) as bar:
            bar.update(7)  # no total: its latest state is written at close()
    finally:
        logger.removeHandler(handler)
    plain.close()
    text = out.getvalue()
    _clean(text)
    lines = text.splitlines()
    assert all(line.strip() for line in lines)  # no blank lines from cursor moves
    assert any("xfusion demo: half way" in line for line in lines)
    for desc, total in (("acquired", 40), ("fused", 50)):
        mine = [line for line in lines if line.startswith(f"{desc}:")]
        assert f"0/{total}" in mine[0] and f"{total}/{total}" in mine[-1], mine
        assert len(mine) <= 3, mine  # first, last (and the close redraw at most)
    assert any(line.startswith("spooled:") and "7" in line for line in lines)


def test_states_are_written_every_so_often_not_every_redraw(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("xfusion_stream.app._progress.time.monotonic", lambda: clock[0])
    out = io.StringIO()
    plain = PlainLines(out, every=10)
    for second in range(31):
        clock[0] = float(second)
        plain.write(f"\rrun: {second}/100 frames")
        plain.flush()
    plain.write("\rrun: 100/100 frames")
    plain.flush()
    plain.write("\n")
    assert out.getvalue().splitlines() == [
        "run: 0/100 frames",
        "run: 10/100 frames",
        "run: 20/100 frames",
        "run: 30/100 frames",
        "run: 100/100 frames",
    ]


def test_only_a_terminal_keeps_its_control_codes():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, log = Tty(), io.StringIO()
    assert plain_unless_tty(tty) is tty
    wrapped = plain_unless_tty(log)
    assert isinstance(wrapped, PlainLines) and plain_unless_tty(wrapped) is wrapped
    wrapped.write("\x1b[31mred\x1b[0m text\n")
    assert log.getvalue() == "red text\n"
