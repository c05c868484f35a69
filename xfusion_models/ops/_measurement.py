"""The Shimadzu as a measurement of the fused frame: what it would have recorded.

A fused frame claims a state of the sample at the time of Shimadzu frame t. The
Shimadzu measured that same state, only coarser: each of its pixels integrates
``ratio x ratio`` Phantom-grid pixels, and its optics blur a little more than the
Phantom's (the intensity match of the grid calibration measures that extra blur as a
Gaussian sigma in Shimadzu pixels). ``measure`` applies both, so ``measure(fused)`` can
be compared with the Shimadzu frame itself: where they disagree beyond the Shimadzu's
noise, the fused frame is not supported by the fast camera.

The noise is shot noise: variance proportional to intensity, ``var = gain * I``.
``shot_noise_gain`` estimates ``gain`` from a single frame (the fast camera's
photon count is not in any metadata): the 3x3 Laplacian-like kernel of Immerkaer
(1996) cancels smooth structure, so on a locally smooth image its response is noise
with variance ``36 var``; the median over pixels of ``response**2 / (36 I)`` is robust
to the minority of pixels where edges leak through, and dividing by the median of a
chi-square with one degree of freedom (0.4549) turns it into the mean. Resampling
(registration) smooths the finest-scale noise, which that kernel sees most: the
estimate then reads low, by a factor the caller can measure once for its resampling
(``ShimadzuMeasurement.noise_scale``, see ``xfusion_stream.fusion``'s fidelity room).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._translation import translate

__all__ = [
    "OFFSET_ACCURACY",
    "SIGMA_FLOOR",
    "ShimadzuMeasurement",
    "measure",
    "noise_sigma",
    "residual_in_noise_units",
    "shot_noise_gain",
]

_CHI2_1_MEDIAN = 0.454936
_NOISE_KERNEL = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
#: Intensity floor of the noise model: dark pixels still carry read noise.
_FLOOR = 1e-3
#: Smallest noise sigma (intensity) trusted: below it a noise-free or 8-bit frame would
#: make every rounding difference look like a contradiction.
SIGMA_FLOOR = 1.0 / 1024


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian with reflected borders (like OpenCV's default)."""
    k = _gaussian_kernel(sigma, x.dtype, x.device)
    r = k.numel() // 2
    if min(x.shape[-2:]) <= r:  # reflect padding needs more pixels than the radius
        return x
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def measure(hr: torch.Tensor, ratio: int, blur_px: float = 0.0) -> torch.Tensor:
    """What the Shimadzu would record of ``hr`` (N, 1, ratio*h, ratio*w) -> (N, 1, h, w).

    Area integration over ``ratio x ratio`` pixels, then the extra Gaussian blur
    ``blur_px`` (sigma in Shimadzu pixels; 0 = none).
    """
    if hr.dim() != 4 or hr.shape[1] != 1:
        raise ValueError(f"measure expects (N, 1, H, W), got {tuple(hr.shape)}")
    if hr.shape[-2] % ratio or hr.shape[-1] % ratio:
        raise ValueError(f"frame {tuple(hr.shape[-2:])} is not a multiple of ratio {ratio}")
    lr = F.avg_pool2d(hr, ratio)
    return _blur(lr, float(blur_px)) if blur_px > 0 else lr


def shot_noise_gain(lr: torch.Tensor) -> torch.Tensor:
    """Per frame ``gain`` of ``var = gain * intensity`` from the frame itself, (N,).

    ``lr`` (N, 1, h, w), intensities in [0, 1]. Frames smaller than 3x3 get NaN.
    """
    n = lr.shape[0]
    if min(lr.shape[-2:]) < 3:
        return torch.full((n,), float("nan"), dtype=lr.dtype, device=lr.device)
    kernel = _NOISE_KERNEL.to(lr.dtype).to(lr.device).view(1, 1, 3, 3)
    response = F.conv2d(lr, kernel)  # valid: no border effects
    level = F.avg_pool2d(lr, 3, stride=1).clamp_min(_FLOOR)
    ratio = (response**2 / (36.0 * level)).flatten(1)
    return ratio.median(dim=1).values / _CHI2_1_MEDIAN


def noise_sigma(level: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Shot-noise sigma at intensity ``level`` (N, 1, h, w) for per-frame ``gain`` (N,)."""
    return (gain.view(-1, 1, 1, 1) * level.clamp_min(_FLOOR)).sqrt()


#: Shimadzu px to which a run's registration residual is measured (0.07 at worst on
#: texture a Shimadzu pixel resolves; finer texture gives none): a smaller offset is not
#: told apart from an exact registration.
OFFSET_ACCURACY = 0.1


def _moved(lr: torch.Tensor, move: tuple[float, float]) -> torch.Tensor:
    """``lr`` (N, 1, h, w) with its content moved by ``move`` (rows, cols) px; as is at 0."""
    if move == (0.0, 0.0):
        return lr
    n = lr.shape[0]
    dy = torch.full((n,), move[0], dtype=lr.dtype, device=lr.device)
    dx = torch.full((n,), move[1], dtype=lr.dtype, device=lr.device)
    return translate(lr, dy, dx)


@dataclass(frozen=True)
class ShimadzuMeasurement:
    """How the Shimadzu measures a frame on the fused grid, and how noisy it is.

    ``ratio``: fused-grid pixels per Shimadzu pixel and axis; ``blur_px``: its extra
    Gaussian blur (sigma, Shimadzu px; the grid calibration's intensity match measures
    it); ``noise_scale``: true noise sigma of the frames fusion sees over what
    ``shot_noise_gain`` reads on them (1 for unresampled frames).

    ``offset``: where the Shimadzu saw the field relative to the registration, (rows,
    cols) in Shimadzu px, as measured on the run's simultaneous frames: the calibration's
    residual on this run. Beyond ``OFFSET_ACCURACY`` (what that measurement can tell)
    ``measure`` models it, moving what it measures there, and ``place`` moves a map of
    the Shimadzu's view back onto the registered grid; within it the registered grid
    stands. The consistency step's position move takes the offset as the place of no
    motion. NaN: not measured (yet): nothing is modelled, and no move is made, since a
    move could not be told from that residual. (0, 0): the registration is exact, as
    for simulated windows.
    """

    ratio: int = 4
    blur_px: float = 0.0
    noise_scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)

    @property
    def modelled_offset(self) -> tuple[float, float]:
        """The part of ``offset`` that ``measure`` and ``place`` model: all of it where
        it was measured beyond ``OFFSET_ACCURACY``, none otherwise."""
        dy, dx = self.offset
        if not (math.isfinite(dy) and math.isfinite(dx)) or math.hypot(dy, dx) <= OFFSET_ACCURACY:
            return (0.0, 0.0)
        return (dy, dx)

    def measure(self, hr: torch.Tensor) -> torch.Tensor:
        return _moved(measure(hr, self.ratio, self.blur_px), self.modelled_offset)

    def place(self, lr: torch.Tensor) -> torch.Tensor:
        """A map on the Shimadzu's grid as the Shimadzu saw it (a residual, a frame)
        moved onto the registered grid: ``measure``'s modelled offset undone."""
        dy, dx = self.modelled_offset
        return _moved(lr, (-dy, -dx))

    def sigma(self, lr: torch.Tensor) -> torch.Tensor:
        """Per-pixel noise sigma of ``lr`` (N, 1, h, w), estimated from each frame."""
        gain = torch.nan_to_num(shot_noise_gain(lr), nan=0.0)  # frames under 3x3 px
        return (noise_sigma(lr, gain) * self.noise_scale).clamp_min(SIGMA_FLOOR)

    def residual(self, hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """``(lr - measure(hr)) / sigma`` per Shimadzu pixel, (N, 1, h, w)."""
        predicted = self.measure(hr)
        if predicted.shape != lr.shape:
            raise ValueError(
                f"fused frame measures to {tuple(predicted.shape)}, Shimadzu frame is "
                f"{tuple(lr.shape)}"
            )
        return (lr - predicted) / self.sigma(lr)


def residual_in_noise_units(
    hr: torch.Tensor,
    lr: torch.Tensor,
    ratio: int,
    blur_px: float = 0.0,
    noise_scale: float = 1.0,
) -> torch.Tensor:
    """``(lr - measure(hr)) / sigma`` per Shimadzu pixel, (N, 1, h, w).

    ``lr`` is the registered Shimadzu frame on the fused frame's intensity scale; sigma is
    its shot noise, estimated from ``lr`` itself. A frame that the Shimadzu supports gives
    values of order 1; a state the Shimadzu did not see gives large ones where it differs.
    """
    return ShimadzuMeasurement(ratio, blur_px, noise_scale).residual(hr, lr)
