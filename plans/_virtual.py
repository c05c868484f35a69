"""A virtual experiment (one single-camera sequence seen by two pretend cameras) as one run."""

from typing import Any

from xfusion_stream.devices import BurstCamera, VirtualCaseBackend, VirtualSequence

from ._burst import Plan, burst_run
from ._qserver import CAMERA, queueserver_annotation

__all__ = ["virtual_experiment"]


def _sequence(phantom: BurstCamera, shimadzu: BurstCamera) -> VirtualSequence:
    """The one sequence both cameras see; anything else is a wiring mistake."""
    backends = [getattr(dev, "backend", None) for dev in (phantom, shimadzu)]
    if not all(isinstance(b, VirtualCaseBackend) for b in backends):
        raise ValueError(
            "virtual_experiment needs the cameras of a virtual sequence "
            "(xfusion_stream.devices.virtual_cameras(source, ...))"
        )
    first, second = (b.sequence for b in backends)  # type: ignore[union-attr]
    if first is not second:
        raise ValueError("the two virtual cameras see different sequences: share one")
    return first


@queueserver_annotation({"phantom": CAMERA, "shimadzu": CAMERA})
def virtual_experiment(
    phantom: BurstCamera,
    shimadzu: BurstCamera,
    *,
    md: dict[str, Any] | None = None,
    interleave: bool = True,
) -> Plan:
    """Acquire a virtual experiment: same streams, keys and configuration as a burst.

    The cameras come from ``virtual_cameras(source, **options)`` (bad sources or options
    raise ``ConfigError`` / ``RecordedFormatError`` there). The start document adds
    ``data_type: "virtual"``, ``virtual_source``, ``phantom_every`` and a ``virtual``
    block (ratio, photons, seed, frame time, downsampling, HR crop).
    """
    run_md: dict[str, Any] = _sequence(phantom, shimadzu).start_metadata()
    run_md.update(md or {})
    return (
        yield from burst_run(
            phantom, shimadzu, md=run_md, interleave=interleave, plan_name="virtual_experiment"
        )
    )
