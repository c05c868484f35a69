"""The one configuration mechanism: ConfigModel, load_config and their messages."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import Field

from xfusion_stream.core import (
    ConfigError,
    ConfigModel,
    HomeConfig,
    load_config,
    read_config,
    read_mapping,
)


class Inner(ConfigModel):
    size: int = Field(default=1, ge=1)


class Outer(ConfigModel):
    name: str
    mode: Literal["a", "b"] = "a"
    inner: Inner = Inner()
    items: tuple[Inner, ...] = ()


def test_constructor_errors_are_config_errors_naming_class_and_field():
    with pytest.raises(ConfigError) as info:
        Outer(name="x", mode="c", inner={"size": 0})  # type: ignore[arg-type]
    lines = str(info.value).splitlines()
    assert lines == [
        "Outer: mode: Input should be 'a' or 'b' (got 'c')",
        "Outer: inner.size: Input should be greater than or equal to 1 (got 0)",
    ]
    with pytest.raises(ConfigError, match="Outer: nmae: Extra inputs are not permitted"):
        Outer(name="x", nmae="y")


def test_nested_errors_keep_the_outer_documents_field_path(tmp_path):
    path = tmp_path / "outer.yaml"
    path.write_text("name: x\nitems:\n  - {size: 2}\n  - {size: -1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    assert str(info.value) == (
        f"{path}: items[1].size: Input should be greater than or equal to 1 (got -1)"
    )


def test_load_config_reads_yaml_json_and_mappings(tmp_path):
    (tmp_path / "o.yaml").write_text("name: y\ninner: {size: 3}\n")
    (tmp_path / "o.json").write_text(json.dumps({"name": "z", "mode": "b"}))
    assert load_config(Outer, tmp_path / "o.yaml").inner.size == 3
    assert load_config(Outer, tmp_path / "o.json").mode == "b"
    assert load_config(Outer, {"name": "m"}) == Outer(name="m")
    with pytest.raises(ConfigError, match=r"^doc 7: name: Field required"):
        load_config(Outer, {}, source="doc 7")


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("bad.yaml", "name: [x\n", "bad.yaml: not valid YAML"),
        ("bad.json", "{name: x}", "bad.json: not valid JSON"),
        ("list.yaml", "- a\n", r"list.yaml: \(top level\): expected a mapping"),
    ],
)
def test_unreadable_documents_name_the_file(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_mapping(tmp_path / name)
    with pytest.raises(ConfigError, match="thing not found"):
        read_mapping(tmp_path / "absent.yaml", what="thing")


def test_replace_validates_and_keeps_unset_fields_unset():
    outer = Outer(name="x")
    changed = outer.replace(mode="b")
    assert changed.mode == "b" and changed.model_fields_set == {"name", "mode"}
    assert outer.mode == "a"  # frozen: the original is untouched
    with pytest.raises(ConfigError, match="Outer: mode"):
        outer.replace(mode="c")
    assert hash(changed) == hash(Outer(name="x", mode="b"))


def test_from_config_reads_the_fields_a_richer_config_shares():
    class Richer(Inner):
        extra: int = 5

    assert Inner.from_config(Richer(size=4)) == Inner(size=4)
    assert type(Inner.from_config(Richer())) is Inner


def test_home_config_keeps_ini_and_checks_general(tmp_path):
    conf = tmp_path / "xfusion.conf"
    conf.write_text(
        "[general]\nmodel_type = EDVRModel\ndata_type = virtual\narch = edvr_stf\n"
        "verbose = True\n\n[calibrate]\nrecord = /data/cal.json\n"
    )
    assert read_config(tmp_path)["calibrate"]["record"] == "/data/cal.json"
    checked = load_config(
        HomeConfig, {"general": {"model_type": "SwinIRModel", "data_type": "actual"}}
    )
    assert checked.general.arch is None
    conf.write_text("[calibrate]\nrecord = x\n")
    with pytest.raises(ConfigError, match=r"xfusion.conf: general: Field required"):
        read_config(tmp_path)
    conf.write_text("[general]\nmodel_type = EDVRModel\ndata_type = actual\narch = unet\n")
    with pytest.raises(ConfigError, match=r"xfusion.conf: general.arch: .*'unet'"):
        read_config(tmp_path)
