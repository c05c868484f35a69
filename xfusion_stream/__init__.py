"""xfusion-stream: live spatiotemporal fusion of dual-camera ultra-high-speed radiography."""

__version__ = "0.1.0"

__all__ = ["__version__"]
