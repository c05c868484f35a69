"""The weights registry: entries beside files, default selection, builders from entries."""

from __future__ import annotations

import json

import pytest
import torch

import xfusion_models as xm
from xfusion_models.weights import _registry


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """An empty registry folder standing in for the package's weights folder."""
    monkeypatch.setattr(_registry, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def _register(folder, stem: str, *, default: bool = False, seed: int = 0, **changes) -> dict:
    torch.manual_seed(seed)
    model = xm.edvr_stf("tiny")
    digest = xm.save_checkpoint(model, folder / f"{stem}.pth")
    entry = {
        "name": stem,
        "arch": "edvr_stf",
        "preset": "tiny",
        "config": model.config,
        "file": f"{stem}.pth",
        "sha256": digest,
        "recipe": {"iters": 10, "seed": seed},
        "metrics": {"psnr_db": 30.0},
        "default": default,
    }
    entry.update(changes)
    (folder / f"{stem}.json").write_text(json.dumps(entry))
    return entry


def test_entries_are_listed_and_built(registry):
    _register(registry, "b_model")
    _register(registry, "a_model", default=True, seed=1)
    assert xm.list_weights() == ["a_model", "b_model"]
    entry = xm.get_weights("a_model")
    assert entry.path == registry / "a_model.pth" and entry.metrics == {"psnr_db": 30.0}
    assert xm.default_weights() == entry
    by_name, by_entry = xm.build_model("a_model"), xm.edvr_stf(weights=entry)
    by_json = xm.build_model(registry / "a_model.json")
    torch.manual_seed(1)
    want = xm.edvr_stf("tiny").state_dict()
    for model in (by_name, by_entry, by_json):
        assert all(torch.equal(model.state_dict()[k], v) for k, v in want.items())
    assert not by_name.training and by_name.preset == "tiny"


def test_no_default_and_several_defaults(registry):
    _register(registry, "one")
    assert xm.default_weights() is None
    _register(registry, "two", default=True)
    _register(registry, "three", default=True)
    with pytest.raises(xm.CheckpointError, match="several entries marked default"):
        xm.default_weights()


def test_unknown_name_lists_known(registry):
    _register(registry, "known")
    with pytest.raises(
        xm.CheckpointError, match=r"unknown weights 'nope'; registered: \['known'\]"
    ):
        xm.get_weights("nope")
    with pytest.raises(xm.CheckpointError, match="neither a registered name"):
        xm.edvr_stf(weights="nope")


def test_tampered_weights_file_fails_sha_check(registry):
    _register(registry, "m")
    (registry / "m.pth").write_bytes((registry / "m.pth").read_bytes() + b"x")
    with pytest.raises(xm.CheckpointError, match="sha256 mismatch"):
        xm.build_model("m")


def test_malformed_entry_names_file_and_field(registry):
    _register(registry, "m", arch="resnet")
    with pytest.raises(xm.CheckpointError, match=r"m\.json: invalid weights entry: arch"):
        xm.list_weights()


def test_entry_name_must_match_file(registry):
    _register(registry, "m", name="other")
    with pytest.raises(xm.CheckpointError, match="must match the file name"):
        xm.list_weights()


def test_entry_for_other_arch_is_refused_by_builder(registry):
    _register(registry, "m")
    if "swin_xvr" in xm.PRESETS:
        with pytest.raises(xm.CheckpointError, match="are for edvr_stf, not swin_xvr"):
            xm.swin_xvr(weights="m")
    with pytest.raises(ValueError, match="preset 'small' asked for"):
        xm.edvr_stf("small", weights="m")


@pytest.mark.parametrize("name", xm.list_weights())
def test_every_shipped_entry_loads(name):
    """Whatever ships in the package folder must verify and build."""
    entry = xm.get_weights(name)
    model = xm.build_model(entry)
    assert model.arch == entry.arch and model.config == entry.config
