"""EPICS burst detectors: areaDetector drivers with an HDF5 file plugin, over Channel Access.

Why ophyd-async's ``AreaDetector`` as it is: the beamline's camera IOCs are
areaDetector IOCs, so the driver (``<prefix>cam1:``) and HDF5 plugin
(``<prefix>HDF1:``) PVs, the file writing and the StreamResource/StreamDatum documents
are ADCore's. What a burst camera adds: ``prepare`` writes the NDAttributes XML that
makes the driver stamp each frame's number, time (ns) and, on the Phantom, the 'E' flag,
which the plugin writes beside the frames; ``BurstFrames_RBV`` says how many frames one
burst holds; ``StatusMessage_RBV`` says why a burst failed. A camera that reports
``Error`` or ``Disconnected`` in the middle of a burst fails ``complete`` at once with
its own words and PV (not after a frame timeout), so the plan can still collect the
frames the plugin wrote. Prefixes come from the profile; ``xfusion ioc`` serves the
same PVs for tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated as A
from typing import Any

from ophyd_async.core import DetectorTriggerLogic, PathProvider, SignalR, observe_value
from ophyd_async.epics import adcore
from ophyd_async.epics.adcore import ADState, NDAttributeParam
from ophyd_async.epics.core import PvSuffix, epics_signal_r, wait_for_good_state

from ..documents import CameraKeys
from ._ad_detector import Camera, burst_keys, burst_ndattributes

__all__ = ["BurstDriverIO", "EpicsBurstDetector"]

#: driver states that end a burst before its frames are all written
FAILED_STATES = frozenset({ADState.ERROR, ADState.DISCONNECTED})


class BurstDriverIO(adcore.ADBaseIO):
    """ADBase driver PVs plus the burst camera's own."""

    status_message: A[SignalR[str], PvSuffix("StatusMessage_RBV")]
    burst_frames: A[SignalR[int], PvSuffix("BurstFrames_RBV")]


class _BurstTrigger(DetectorTriggerLogic):
    """Internal triggering of ``num`` frames, with the per-frame NDAttributes set first
    (the HDF5 data logic reads them back to describe the attribute datasets)."""

    def __init__(
        self, driver: BurstDriverIO, attributes: Callable[[], list[NDAttributeParam]]
    ) -> None:
        self.driver = driver
        self.attributes = attributes

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        await self.driver.nd_attributes_file.set(adcore.ndattributes_to_xml(self.attributes()))
        await adcore.prepare_exposures(self.driver, num, livetime, deadtime)


class _BurstAcquire(adcore.ADAcquireLogic):
    """ADCore's acquire logic, but a burst that ended in Error fails at once with the
    camera's own words (``StatusMessage_RBV``), not after a state timeout."""

    driver: BurstDriverIO

    async def wait_for_idle(self) -> None:
        if self.acquire_status:
            await self.acquire_status
        state = await self.driver.detector_state.get_value()
        if state in FAILED_STATES:
            why = await self.driver.status_message.get_value()
            raise RuntimeError(f"{self.driver.detector_state.source} {state.value}: {why}")
        await wait_for_good_state(
            self.driver.detector_state,
            {ADState.IDLE, ADState.ABORTED},
            message_signal=self.driver.status_message,
        )


class EpicsBurstDetector(adcore.AreaDetector[BurstDriverIO]):
    """A burst camera (``camera``: phantom or shimadzu) on an areaDetector IOC.

    ``path_provider`` gives the directory and file name the IOC's HDF5 plugin writes
    (the directory as the IOC sees it; ``directory_uri`` as readers see it).
    ``keys`` names the frames and per-frame values (``<name>_<keys.image>``, ...;
    default: the camera's default names), as the profile's ``devices.<camera>.keys``
    tells the document reader.
    """

    def __init__(
        self,
        prefix: str,
        path_provider: PathProvider,
        *,
        camera: Camera,
        driver_suffix: str = "cam1:",
        hdf_suffix: str = "HDF1:",
        name: str = "",
        keys: CameraKeys | None = None,
    ) -> None:
        keys = burst_keys(camera, keys)
        driver = BurstDriverIO(prefix + driver_suffix)
        # the model read under a name the document reader knows (<name>-camera_model)
        self.camera_model = epics_signal_r(str, prefix + driver_suffix + "Model_RBV")
        self.burst_frames = epics_signal_r(int, prefix + driver_suffix + "BurstFrames_RBV")
        super().__init__(
            driver,
            prefix,
            adcore.ADWriterFactory.hdf(
                path_provider, writer_suffix=hdf_suffix, datakey_suffix=f"_{keys.image}"
            ),
            acquire_logic=_BurstAcquire(driver),
            trigger_logic=_BurstTrigger(
                driver, lambda: burst_ndattributes(self.name, camera, keys)
            ),
            config_sigs=[self.camera_model],
            name=name,
        )

    async def _wait_for_index(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """ophyd-async's wait for the frames, raced against the camera failing: an
        ``Error``/``Disconnected`` state ends it at once, naming the camera and PV."""
        failure = asyncio.ensure_future(self._camera_failure())
        updates = super()._wait_for_index(*args, **kwargs)
        try:
            while True:
                step = asyncio.ensure_future(anext(updates))
                await asyncio.wait({step, failure}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()  # let it end before the generator is closed
                    await asyncio.gather(step, return_exceptions=True)
                    raise failure.result()
                try:
                    yield step.result()
                except StopAsyncIteration:
                    return
        finally:
            failure.cancel()
            close = getattr(updates, "aclose", None)
            if close is not None:
                await close()

    async def _camera_failure(self) -> RuntimeError:
        """The error to raise once the driver reports a failed burst (waits till then)."""
        state_pv = self.driver.detector_state
        async for state in observe_value(state_pv):
            if state in FAILED_STATES:
                why = await self.driver.status_message.get_value()
                return RuntimeError(f"{self.name}: {state_pv.source} {state.value}: {why}")
        raise AssertionError("unreachable: observe_value never ends")
