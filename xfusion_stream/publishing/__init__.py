"""Publishing room: where raw and fused documents go (Tiled, 0MQ)."""

from ._tiled import EmbeddedTiled, make_tiled_writer, register_json_seq_exporter

__all__ = ["EmbeddedTiled", "make_tiled_writer", "register_json_seq_exporter"]
