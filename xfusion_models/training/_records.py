"""What a training run leaves for people to look at: metrics CSV and a loss/PSNR plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path

__all__ = ["TrainLog"]

COLUMNS = ("iter", "loss", "lr", "val_psnr", "val_ssim", "elapsed_s")


class TrainLog:
    """Append-only CSV of training rows; resuming drops rows past the restored iteration."""

    def __init__(self, csv_path: Path, plot_path: Path) -> None:
        self.csv_path, self.plot_path = Path(csv_path), Path(plot_path)

    def rows(self) -> list[dict[str, float]]:
        if not self.csv_path.is_file():
            return []
        with self.csv_path.open(newline="") as handle:
            return [
                {k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(handle)
            ]

    def truncate_after(self, iteration: int) -> None:
        keep = [r for r in self.rows() if r["iter"] <= iteration]
        with self.csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for row in keep:
                writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})

    def append(self, row: dict[str, float]) -> None:
        with self.csv_path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=COLUMNS).writerow(
                {k: _cell(row.get(k)) for k in COLUMNS}
            )

    def last_validation(self) -> dict[str, float]:
        vals = [r for r in self.rows() if "val_psnr" in r]
        if not vals:
            return {}
        return {"val_psnr": vals[-1]["val_psnr"], "val_ssim": vals[-1]["val_ssim"]}

    def plot(self, title: str = "") -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.rows()
        fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 4))
        ax_loss.plot([r["iter"] for r in rows], [r["loss"] for r in rows])
        ax_loss.set(xlabel="iteration", ylabel="training loss", yscale="log", title="loss")
        vals = [r for r in rows if "val_psnr" in r]
        ax_psnr.plot([r["iter"] for r in vals], [r["val_psnr"] for r in vals], "o-")
        ax_psnr.set(xlabel="iteration", ylabel="PSNR (dB, 8-bit)", title="validation")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(self.plot_path, dpi=100)
        plt.close(fig)


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
