"""Scene engine render times at the real sensor sizes (Phantom 1000x1600). Prints JSON."""

from __future__ import annotations

import json
import time

import numpy as np

from xfusion_stream.simulation import Scene, SceneConfig


def _median_ms(fn, n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    start = time.perf_counter()
    scene = Scene(SceneConfig())
    init_s = time.perf_counter() - start
    scene.truth(0.0)  # warm-up
    result = {
        "phantom_shape": list(scene.phantom_shape),
        "scene_init_s": round(init_s, 3),
        "truth_ms": round(_median_ms(lambda i: scene.truth(137.0 * (i + 1)), 20), 2),
        "shimadzu_frame_ms": round(_median_ms(lambda i: scene.shimadzu_frame(i + 1), 10), 2),
        "phantom_frame_ms": round(_median_ms(lambda i: scene.phantom_frame(i), 5), 2),
        "grid_truth_ms": round(
            _median_ms(lambda i: Scene(SceneConfig(content="grid")).truth(0.0), 2), 2
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
