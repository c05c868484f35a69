"""Virtual calibration pairs: an image, a known smooth misregistration, the LR camera.

The Phantom sees the image; the Shimadzu sees it displaced by a smooth random field,
area-downsampled x4 with Poisson noise (as the fusion models' virtual data), then
upsampled back. The net must recover the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..ops import warp

__all__ = ["VirtualPairs", "list_images", "random_flow"]

_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


def list_images(image_root: str | Path, meta_info_file: str | Path | None = None) -> list[Path]:
    """Images under ``image_root``; with a meta-info file, its first column (relative paths)."""
    root = Path(image_root)
    if meta_info_file:
        names = [
            line.split()[0]
            for line in Path(meta_info_file).read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        paths = [root / n for n in names]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{meta_info_file}: listed images not found: {missing[:3]}")
    else:
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"{image_root}: no training images found")
    return paths


def random_flow(
    batch: int, size: tuple[int, int], max_px: float, generator: torch.Generator
) -> torch.Tensor:
    """Smooth random displacement (B, 2, H, W): a 4x4 random lattice, bicubic upsampled."""
    coarse = (torch.rand(batch, 2, 4, 4, generator=generator) * 2 - 1) * max_px
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=True)


class VirtualPairs:
    """Batches of (hr, lr_up, flow) from gray images, seeded."""

    def __init__(
        self, images: list[Path], *, crop: int = 64, max_flow_px: float = 3.0, seed: int = 0
    ) -> None:
        import cv2

        self.crop = crop
        self.max_flow_px = max_flow_px
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.images = []
        for path in images:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise ValueError(f"{path}: not a readable image")
            if img.ndim == 3:
                img = img[..., :3].mean(axis=2)
            img = img.astype(np.float32)
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
            if min(img.shape) < crop:
                raise ValueError(f"{path}: smaller than the crop {crop}")
            self.images.append(img)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        crops = []
        for _ in range(size):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[0] - self.crop + 1)
            x = self.rng.integers(img.shape[1] - self.crop + 1)
            crops.append(img[y : y + self.crop, x : x + self.crop])
        hr = torch.from_numpy(np.stack(crops))[:, None]
        flow = random_flow(size, (self.crop, self.crop), self.max_flow_px, self.generator)
        seen = warp(hr, -flow)
        lr = F.avg_pool2d(seen, 4)
        b0 = 10 ** (1 + 6 * torch.rand(size, 1, 1, 1, generator=self.generator))
        lr = torch.clamp(torch.poisson(lr * b0, generator=self.generator) / b0, 0, 1)
        lr_up = F.interpolate(lr, scale_factor=4, mode="bilinear", align_corners=False)
        return hr, lr_up, flow
