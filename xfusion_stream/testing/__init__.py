"""The public test kit: what the test suite, the benchmarks and users' own tests share.

Never imported by runtime code (import-linter keeps it on top of the layers).
"""

from ._kit import BEAMLINE_SCENE, FUSION_SCENE, DocumentLog, expected_table, sim_cameras

__all__ = ["BEAMLINE_SCENE", "FUSION_SCENE", "DocumentLog", "expected_table", "sim_cameras"]
