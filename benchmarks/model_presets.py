"""Parameter counts of every preset and CPU timing of one 64x96 window (JSON on stdout).

    python benchmarks/model_presets.py [--threads N] [--repeats R]

Timing per arch at the ``small`` preset: the plain forward, and the streaming step a live
callback pays per new Shimadzu frame (encode one LR frame + fuse from cached features).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import xfusion_models as xm


def _best_of(fn, repeats: int) -> float:
    with torch.no_grad():
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict = {"threads": args.threads, "torch": torch.__version__, "params": {}, "cpu_s": {}}
    builders = {"edvr_stf": xm.edvr_stf, "swin_xvr": xm.swin_xvr}
    for arch, build in builders.items():
        report["params"][arch] = {
            preset: sum(p.numel() for p in build(preset).parameters())
            for preset in ("paper", "small", "tiny")
        }
    gen = torch.Generator().manual_seed(0)
    lq = torch.rand(1, 3, 1, 64, 96, generator=gen)
    hq = torch.rand(1, 2, 1, 256, 384, generator=gen)
    for arch, build in builders.items():
        model = build("small").eval()
        with torch.no_grad():
            lr = model.encode_lr(lq[0]).unsqueeze(0)
            hr = model.encode_hr(hq[0]).unsqueeze(0)

        def step(model=model, lr=lr, hr=hr):
            model.encode_lr(lq[0, 2:])
            return model.fuse(lr, hr, lq[:, 1])

        report["cpu_s"][arch] = {
            "small_forward_64x96": round(_best_of(lambda m=model: m(lq, hq), args.repeats), 4),
            "small_streaming_step_64x96": round(_best_of(step, args.repeats), 4),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
