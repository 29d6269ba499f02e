"""registry3d: an open clinical data registry for medical 3D printing."""

__version__ = "0.1.0"
