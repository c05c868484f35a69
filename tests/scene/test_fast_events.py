"""Fast events: each kind changes the scene between Phantom frames, inside its truth mask."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from xfusion_stream.core import ConfigError
from xfusion_stream.simulation import (
    FAST_EVENT_PRESETS,
    FastEvents,
    Scene,
    SceneConfig,
    parse_fast_events,
)
from xfusion_stream.simulation._event_kinds import Bubble, Fragmentation, Pore, Spatter
from xfusion_stream.simulation._fast_events import EventField, draw_fast_events, fast_event_mask

EVERY = 10
#: still sample, still droplet and jet: whatever changes between Phantom frames is an event
STILL = dict(
    shimadzu_shape=(16, 16),
    n_shimadzu=41,
    phantom_every=EVERY,
    motion_px_per_phantom_frame=0.0,
    feature_px_per_phantom_frame=0.0,
)
KINDS = [name for name in FastEvents.model_fields]


def _only(kind: str, seed: int = 4) -> Scene:
    amount = 1 if kind == "keyholes" else 1.0
    return Scene(SceneConfig(seed=seed, fast_events=FastEvents(**{kind: amount}), **STILL))


def _tau_truth(scene: Scene, tau: float) -> np.ndarray:
    return scene.truth(tau * scene.phantom_period_ns)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_the_scene_between_phantom_frames_inside_its_mask(kind: str) -> None:
    scene = _only(kind)
    assert scene.fast_events, f"no {kind} drawn"
    changed_somewhere = False
    for k in range(1, scene.n_shimadzu - 1):
        if k % EVERY == 0:
            continue
        tau = k / EVERY
        n0, n1 = math.floor(tau), math.ceil(tau)
        now = _tau_truth(scene, tau)
        before, after = _tau_truth(scene, n0), _tau_truth(scene, n1)
        mask = scene.event_mask(tau * scene.phantom_period_ns)
        assert mask.shape == scene.phantom_shape and mask.dtype == bool
        # outside the mask the frame is exactly what both Phantom frames show
        np.testing.assert_array_equal(now[~mask], before[~mask])
        np.testing.assert_array_equal(now[~mask], after[~mask])
        if mask.any():
            assert mask.mean() < 0.5, "a mask that covers the frame tests nothing"
            differs_before = np.abs(now - before)[mask].max() > 0.01
            differs_after = np.abs(now - after)[mask].max() > 0.01
            changed_somewhere |= differs_before and differs_after
    assert changed_somewhere, f"{kind}: never differs from both Phantom frames mid-interval"


def test_masks_are_empty_without_events_and_present_with_them() -> None:
    plain = Scene(SceneConfig(seed=4, **STILL))
    assert plain.fast_events == []
    for k in (0, 5, 17):
        mask = plain.shimadzu_event_mask(k)
        assert mask.shape == plain.phantom_shape and not mask.any()
    empty = Scene(SceneConfig(seed=4, fast_events=FastEvents(), **STILL))
    assert empty.fast_events == [] and not empty.shimadzu_event_mask(5).any()
    grid = Scene(
        SceneConfig(seed=4, content="grid", fast_events=FAST_EVENT_PRESETS["mixed"], **STILL)
    )
    assert grid.fast_events == [] and not grid.shimadzu_event_mask(5).any()
    mixed = Scene(SceneConfig(seed=4, fast_events=FAST_EVENT_PRESETS["mixed"], **STILL))
    with_events = [mixed.shimadzu_event_mask(k).any() for k in range(mixed.n_shimadzu)]
    assert sum(with_events) > mixed.n_shimadzu // 2
    with pytest.raises(IndexError):
        mixed.shimadzu_event_mask(mixed.n_shimadzu)


FIELD = EventField((40, 40), 4.0, 4.0, 32, 32, duration=3.0, every=EVERY)


def _footprint(event, tau: float) -> np.ndarray:
    mask = np.zeros((32, 32), bool)
    for patch in event.patches(tau, FIELD.canvas_shape):
        patch.mark(mask, 4, 4)
    return mask


def test_mask_is_footprint_now_and_at_both_phantom_frames_dilated_2px() -> None:
    from scipy import ndimage

    spatter = Spatter((20.0, 20.0), 0.3, 0.3, ((20.0, 0.0),), 2.0, 0.5)
    assert not fast_event_mask([spatter], 0.2, FIELD).any(), "not born yet, not on a frame"
    assert not fast_event_mask([spatter], 1.5, FIELD).any()
    now = fast_event_mask([spatter], 0.45, FIELD)
    disc = np.hypot(*np.mgrid[-2:3, -2:3]) <= 2.0
    expected = ndimage.binary_dilation(_footprint(spatter, 0.45), disc)
    np.testing.assert_array_equal(now, expected)
    # a bubble that collapses mid-interval: its ghost (Phantom frame 0) counts afterwards
    bubble = Bubble((20.0, 20.0), 5.0, 0.4, 0.1, 0.2)
    assert not _footprint(bubble, 0.7).any()
    ghost = fast_event_mask([bubble], 0.7, FIELD)
    np.testing.assert_array_equal(ghost, ndimage.binary_dilation(_footprint(bubble, 0.0), disc))
    assert not fast_event_mask([bubble], 1.5, FIELD).any(), "gone in both Phantom frames"
    assert ghost.sum() > _footprint(bubble, 0.0).sum()
    # what is there but does not change in the interval is no fast event there
    pore = Pore((20.0, 20.0), 4.0, 0.2, 0.3, 0.2)
    assert _footprint(pore, 1.5).any() and not fast_event_mask([pore], 1.5, FIELD).any()
    assert fast_event_mask([pore], 0.3, FIELD).any()
    body = Fragmentation((20.0, 20.0), 4.0, 2.5, ((90.0, 0.0), (-90.0, 0.0), (0.0, 90.0)), 9.0, 0.5)
    assert _footprint(body, 1.5).any() and not fast_event_mask([body], 1.5, FIELD).any()
    assert fast_event_mask([body], 2.2, FIELD).any(), "breaks before Phantom frame 3"


def _kinds_drawn(seed: int) -> dict[str, list]:
    out: dict[str, list] = {}
    for event in draw_fast_events(FAST_EVENT_PRESETS["dense"], (seed, 5), FIELD):
        out.setdefault(event.kind, []).append(event)
    return out


def test_drawn_events_keep_their_kinds_promises() -> None:
    for seed in range(20):
        drawn = _kinds_drawn(seed)
        for keyhole in drawn["keyhole"]:
            assert 0.5 <= keyhole.period <= 4.0
        for spatter in drawn.get("spatter", []):
            assert spatter.lifetime < 1.0
            frac = spatter.birth % 1.0
            assert 1.0 / EVERY <= frac <= 1 - 1.0 / EVERY, "born between Phantom frames"
        for particle in drawn.get("particle", []):
            assert 2.0 <= math.hypot(*particle.velocity) / EVERY <= 20.0
        for crack in drawn.get("crack", []):
            assert 0 < crack.start % 1.0, "starts mid-interval"
        for frag in drawn.get("fragmentation", []):
            assert len(frag.velocities) >= 3


def test_events_are_deterministic_per_seed_and_each_kind_has_its_own_stream() -> None:
    config = SceneConfig(seed=6, fast_events=FAST_EVENT_PRESETS["mixed"], **STILL)
    a, b = Scene(config), Scene(config)
    assert [e.summary() for e in a.fast_events] == [e.summary() for e in b.fast_events]
    np.testing.assert_array_equal(a.shimadzu_truth(13), b.shimadzu_truth(13))
    np.testing.assert_array_equal(a.shimadzu_event_mask(13), b.shimadzu_event_mask(13))
    other = Scene(config.replace(seed=7))
    assert [e.summary() for e in other.fast_events] != [e.summary() for e in a.fast_events]
    # more spatter does not move the keyhole
    keyhole = [e.summary() for e in a.fast_events if e.kind == "keyhole"]
    more = config.replace(fast_events=FAST_EVENT_PRESETS["mixed"].replace(spatter=3.0))
    assert [e.summary() for e in Scene(more).fast_events if e.kind == "keyhole"] == keyhole


def test_events_change_nothing_but_their_own_pixels() -> None:
    config = SceneConfig(seed=8, shimadzu_shape=(16, 16), n_shimadzu=41, phantom_every=EVERY)
    plain = Scene(config)
    busy = Scene(config.replace(fast_events=FAST_EVENT_PRESETS["dense"]))
    assert busy.features == plain.features
    np.testing.assert_array_equal(busy.phantom_times_ns(), plain.phantom_times_ns())
    pad = busy._pad
    for k in (3, 14, 27):
        tau = busy.shimadzu_times_ns()[k] / busy.phantom_period_ns
        touched = np.zeros(busy.phantom_shape, bool)
        for event in busy.fast_events:
            for patch in event.patches(tau, busy.canvas_shape):
                patch.mark(touched, pad, pad)
        differs = busy.shimadzu_truth(k) != plain.shimadzu_truth(k)
        assert differs.any() and not (differs & ~touched).any()


def _digest(frames: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for frame in frames:
        h.update(np.ascontiguousarray(frame).tobytes())
    return h.hexdigest()[:16]


#: frames of default scenes rendered before fast events existed (commit d22a9b2)
GOLDEN = {
    "s11": (
        dict(seed=11, shimadzu_shape=(16, 24), n_shimadzu=48),
        ("275fc87b26bdc78a", "ff439cef18632716", "8eb2b105755dbcc1"),
    ),
    "fast": (
        dict(
            seed=5,
            shimadzu_shape=(20, 20),
            n_shimadzu=30,
            motion_px_per_phantom_frame=9.0,
            feature_px_per_phantom_frame=20.0,
            shimadzu_photons=None,
        ),
        ("42ed4a478e56c811", "5b02a2f47753d0fc", "6e03da570be976db"),
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_default_scenes_render_bit_identical_frames(name: str) -> None:
    kwargs, (shimadzu, phantom, truth) = GOLDEN[name]
    scene = Scene(SceneConfig(**kwargs))
    assert _digest([scene.shimadzu_frame(k) for k in range(0, scene.n_shimadzu, 7)]) == shimadzu
    assert _digest([scene.phantom_frame(i) for i in range(scene.n_phantom)]) == phantom
    assert _digest([scene.shimadzu_truth(k) for k in range(0, scene.n_shimadzu, 5)]) == truth
    assert "fast_events" not in scene.config.to_dict() and "fast_events" not in scene.describe()


def test_presets_and_counts_parse_and_bad_ones_are_refused() -> None:
    assert parse_fast_events("none") is None and parse_fast_events("spatter=0") is None
    assert parse_fast_events("mixed") == FAST_EVENT_PRESETS["mixed"]
    both = parse_fast_events("mixed, cracks=3")
    assert both is not None and both.cracks == 3.0 and both.keyholes == 1
    only = parse_fast_events("spatter=2,keyholes=2")
    assert only == FastEvents(spatter=2.0, keyholes=2)
    for bad, match in [
        ("wild", "unknown preset 'wild'"),
        ("sparks=1", "unknown kind 'sparks'"),
        ("spatter=lots", "spatter: not a number"),
        ("keyholes=1.5", "keyholes: must be a whole number"),
        ("spatter=-1", "spatter: .*greater than or equal to 0"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_fast_events(bad)


def test_scene_config_carries_fast_events_through_its_dict() -> None:
    config = SceneConfig(seed=2, fast_events=FastEvents(particles=2.0), **STILL)
    d = config.to_dict()
    assert d["fast_events"]["particles"] == 2.0
    assert SceneConfig.from_dict(d) == config
    scene = Scene(config)
    kinds = {e["kind"] for e in scene.describe()["fast_events"]}
    assert kinds == {"particle"}
    with pytest.raises(ConfigError, match="fast_events.bubbles"):
        SceneConfig(fast_events={"bubbles": -1.0})  # type: ignore[arg-type]
