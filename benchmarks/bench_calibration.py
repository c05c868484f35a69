"""Spatial calibration at the real sensor sizes (Shimadzu 250x400, Phantom 1000x1600).

Prints JSON: grid calibration time and accuracy against the simulated truth, and the
per-frame cost of registration (one remap per Shimadzu frame, one slice per Phantom).
"""

from __future__ import annotations

import json
import time

import numpy as np

from xfusion_stream.calibration import Registration, calibrate_grid
from xfusion_stream.simulation import Scene, SceneConfig


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    scene = Scene(SceneConfig(content="grid", n_shimadzu=8, n_pre_trigger=0, n_post_trigger=8))
    phantom = [scene.phantom_frame(i) for i in range(min(4, scene.n_phantom))]
    shimadzu = [scene.shimadzu_frame(k) for k in range(scene.n_shimadzu)]
    start = time.perf_counter()
    record = calibrate_grid(phantom, shimadzu).record
    calibrate_s = time.perf_counter() - start
    truth = scene.transform
    start = time.perf_counter()
    registration = Registration(record)
    tables_ms = (time.perf_counter() - start) * 1e3
    result = {
        "shimadzu_shape": list(record.shimadzu_shape),
        "phantom_shape": list(record.phantom_shape),
        "calibrate_grid_s": round(calibrate_s, 3),
        "n_pairs": record.n_pairs,
        "rotation_error_deg": abs(record.rotation_deg - truth.rotation_deg),
        "scale_col_error": abs(record.scale_col / truth.scale_col - 1),
        "scale_row_error": abs(record.scale_row / truth.scale_row - 1),
        "translation_error_px": float(
            np.hypot(*np.subtract(record.translation_px, truth.translation_px))
        ),
        "residual_mean_px": record.residuals[-1].mean,
        "crop": record.crop.model_dump(),
        "remap_tables_ms": round(tables_ms, 2),
        "shimadzu_lr_ms": round(_median_ms(lambda: registration.shimadzu_lr(shimadzu[0]), 50), 3),
        "phantom_hr_ms": round(_median_ms(lambda: registration.phantom_hr(phantom[0]), 50), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
