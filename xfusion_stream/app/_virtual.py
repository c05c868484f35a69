"""Virtual experiments for ``xfusion inference --data_type virtual``: which sequences, how seen.

The seed's ``--opt`` names a testing-dataset YAML and ``--img-class`` one dataset in it
(``dataset1``, ``dataset2``) or one clip folder. Schema (relative paths resolve
against the YAML's folder; see ``profiles/virtual_example.yaml``)::

    datasets:
      dataset1:
        hr_dir: rad_00001/hr      # clip folders of gray frames, or one such folder
        lr_dir: rad_00001/lr      # optional: ready-made LR clips (else x4 downsampling)
        clips: [clip_000]         # optional: default every clip folder under hr_dir
        phantom_every: 20         # Phantom sees every 20th frame
        photons: 3162.3           # Shimadzu shot noise b0 (null: none), or
        # photons_log10: [1, 7]   # b0 = 10**U(1, 7) per frame
        ratio: 4
        seed: 0
        frame_ns: 200
        downsample: bicubic       # or area

Virtual data needs no measured calibration: :func:`identity_calibration` is the
record of two perfectly registered cameras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from ..calibration import CalibrationRecord, Crop
from ..core import ConfigError, ConfigModel, InterCameraTransform, load_config, read_mapping
from ..devices import VirtualOptions, VirtualSequence

__all__ = [
    "VirtualDataset",
    "VirtualDatasets",
    "VirtualSource",
    "find_virtual_sources",
    "identity_calibration",
    "load_virtual_datasets",
    "virtual_windows",
]

_FRAME_SUFFIXES = {".png", ".tif", ".tiff"}


class VirtualDataset(VirtualOptions):
    """One dataset of the testing YAML: where its clips are, and how the cameras see them.

    The camera options are :class:`~xfusion_stream.devices.VirtualOptions`' own fields.
    ``photons_log10: [e0, e1]`` is the YAML's name for a photons range.
    """

    hr_dir: Path
    lr_dir: Path | None = None
    clips: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _photons_range(cls, data: Any) -> Any:
        if isinstance(data, dict) and "photons_log10" in data:
            data = dict(data)
            log10 = data.pop("photons_log10")
            if log10 is not None:
                if data.get("photons") is not None:
                    raise ValueError("give photons (fixed b0) or photons_log10 (range), not both")
                data["photons"] = log10
        return data

    def resolved(self, base: Path) -> VirtualDataset:
        """Relative folders taken from ``base`` (the YAML's folder)."""
        lr_dir = None if self.lr_dir is None else (base / self.lr_dir.expanduser()).resolve()
        return self.replace(hr_dir=(base / self.hr_dir.expanduser()).resolve(), lr_dir=lr_dir)


class VirtualDatasets(ConfigModel):
    """The whole testing YAML."""

    datasets: dict[str, VirtualDataset] = Field(min_length=1)


@dataclass(frozen=True)
class VirtualSource:
    """One sequence to run as a virtual experiment, with how its cameras see it."""

    name: str
    path: Path
    lr_path: Path | None = None
    options: VirtualOptions = field(default_factory=VirtualOptions)

    def plan_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``virtual_cameras`` besides the source."""
        return {**self.options.model_dump(), "lr_source": self.lr_path}

    @cached_property
    def sequence(self) -> VirtualSequence:
        return VirtualSequence(self.path, self.options, lr_source=self.lr_path)

    @property
    def shimadzu_shape(self) -> tuple[int, int]:
        return self.sequence.lr_shape

    @property
    def phantom_shape(self) -> tuple[int, int]:
        return self.sequence.hr_shape


def load_virtual_datasets(path: str | Path) -> VirtualDatasets:
    """Read the testing YAML; errors name the file and the field."""
    path = Path(path)
    data = read_mapping(path, what="virtual dataset YAML")
    config = load_config(VirtualDatasets, data, source=path)
    base = path.resolve().parent
    return config.replace(
        datasets={name: ds.resolved(base) for name, ds in config.datasets.items()}
    )


def _has_frames(folder: Path) -> bool:
    return any(p.suffix.lower() in _FRAME_SUFFIXES for p in folder.iterdir())


def _clip_folders(root: Path, where: str) -> list[Path]:
    """``root`` itself when it holds frames, else its subfolders that do."""
    if not root.is_dir():
        raise ConfigError(f"{where}: folder {root} not found")
    if _has_frames(root):
        return [root]
    clips = sorted(p for p in root.iterdir() if p.is_dir() and _has_frames(p))
    if not clips:
        raise ConfigError(f"{where}: {root} holds no frames and no clip folders of frames")
    return clips


def _dataset_sources(ds: VirtualDataset, where: str) -> list[VirtualSource]:
    """``where`` is ``'<file>: datasets.<name>.'`` (or a folder) for error messages."""
    options = VirtualOptions.from_config(ds)
    if ds.clips is None:
        folders = _clip_folders(ds.hr_dir, f"{where}hr_dir")
    else:
        folders = []
        for i, clip in enumerate(ds.clips):
            folder = ds.hr_dir / clip
            if not folder.is_dir():
                raise ConfigError(f"{where}clips[{i}]: {folder} not found")
            folders.append(folder)
    sources = []
    for folder in folders:
        lr = None
        if ds.lr_dir is not None:
            lr = ds.lr_dir if folder == ds.hr_dir else ds.lr_dir / folder.name
            if not lr.is_dir():
                raise ConfigError(f"{where}lr_dir: {lr} not found")
        sources.append(VirtualSource(folder.name, folder, lr, options))
    return sources


def find_virtual_sources(
    opt: Path | None, img_class: str | None, root: Path | None = None
) -> list[VirtualSource]:
    """The sequences ``--opt``/``--img-class`` (or ``--input_dir``) select.

    With ``opt``: ``img_class`` names a dataset, or a clip of one; None is allowed when
    the YAML has one dataset. Without ``opt``: ``root`` (or ``root/img_class``) is a
    clip folder or a folder of clips, seen with the default options.
    """
    if opt is not None:
        config = load_virtual_datasets(opt)
        names = sorted(config.datasets)
        if img_class is None:
            if len(names) != 1:
                raise ConfigError(f"{opt}: --img-class must name one of the datasets {names}")
            img_class = names[0]
        if img_class in config.datasets:
            return _dataset_sources(config.datasets[img_class], f"{opt}: datasets.{img_class}.")
        for name in names:
            ds = config.datasets[name]
            if ds.clips is not None and img_class not in ds.clips:
                continue
            if (ds.hr_dir / img_class).is_dir():
                found = ds.replace(clips=(img_class,))
                return _dataset_sources(found, f"{opt}: datasets.{name}.")
        raise ConfigError(
            f"{opt}: --img-class {img_class!r} is neither a dataset ({names}) nor a clip of one"
        )
    if root is None:
        raise ConfigError("virtual data needs --opt DATASET_YAML (or --input_dir with clips)")
    folder = Path(root) if img_class is None else Path(root) / img_class
    return _dataset_sources(VirtualDataset(hr_dir=folder), "--input_dir: ")


def identity_calibration(
    shimadzu_shape: tuple[int, int], phantom_shape: tuple[int, int], *, ratio: int = 4
) -> CalibrationRecord:
    """Calibration record of two perfectly registered cameras (virtual data).

    No mirror, rotation, scale or translation: the Phantom grid is the Shimadzu HR
    grid. The crop is the whole frame rounded down to multiples of 16 (anchored at the
    top-left, like the virtual cameras' own crop), so registration only copies pixels.
    """
    rows, cols = int(phantom_shape[0]), int(phantom_shape[1])
    if (rows, cols) != (int(shimadzu_shape[0]) * ratio, int(shimadzu_shape[1]) * ratio):
        raise ConfigError(
            f"identity calibration needs phantom_shape = {ratio} x shimadzu_shape, got "
            f"{tuple(phantom_shape)} and {tuple(shimadzu_shape)}"
        )
    width, height = (cols // 16) * 16, (rows // 16) * 16
    if width == 0 or height == 0:
        raise ConfigError(f"identity calibration: frames {(rows, cols)} are smaller than 16x16")
    crop = Crop(x=0, y=0, width=width, height=height)
    transform = InterCameraTransform(mirror=False, ratio=ratio)
    lr_shape = (int(shimadzu_shape[0]), int(shimadzu_shape[1]))
    matrix = transform.matrix(lr_shape, (rows, cols))
    return CalibrationRecord(
        source="virtual:identity",
        ratio=ratio,
        mirror=False,
        shimadzu_shape=lr_shape,
        phantom_shape=(rows, cols),
        matrix=matrix.tolist(),
        rotation_deg=0.0,
        scale_row=1.0,
        scale_col=1.0,
        translation_px=(0.0, 0.0),
        crop=crop,
    )


def virtual_windows(source: VirtualSource | VirtualSequence, mode: str) -> int:
    """How many fused frames a virtual experiment gives in ``mode`` (its pairing table)."""
    from ..calibration import pairing_table

    seq = source.sequence if isinstance(source, VirtualSource) else source
    table = pairing_table(seq.phantom_timing(), seq.shimadzu_timing(), mode)
    return len(table.windows)
