"""FusionModel holds a network that satisfies the models' streaming protocol, and records
the checkpoint's sha256 with the models' own helper."""

from __future__ import annotations

import pytest
import torch

from xfusion_stream.core import ConfigError
from xfusion_stream.fusion import FusionModel, load_fusion_model


def test_a_network_without_the_streaming_protocol_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"Conv2d is not a streaming .* lacks num_feat, "):
        FusionModel(
            net=torch.nn.Conv2d(1, 1, 3),  # type: ignore[arg-type]
            name="conv",
            arch="edvr_stf",
            sha256="0" * 64,
            device=torch.device("cpu"),
        )


def test_a_checkpoint_path_is_recorded_with_its_file_sha256(tmp_path):
    import xfusion_models as xm

    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    xm.save_checkpoint(xm.swin_xvr("tiny"), path)
    model = load_fusion_model(str(path))
    assert model.sha256 == xm.file_sha256(path) and len(model.sha256) == 64
    assert model.arch == "swin_xvr" and isinstance(model.net, xm.StreamingFusionNet)
    assert not hasattr(model, "has_attention")
