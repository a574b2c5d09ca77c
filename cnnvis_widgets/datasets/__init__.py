"""Datasets: the Broden on-disk format and ShapeWorld, the embedded concept world written in it."""

from .broden import Broden, BrodenFormatError, BrodenWriter
from .shapeworld import shapeworld

__all__ = ["Broden", "BrodenFormatError", "BrodenWriter", "shapeworld"]
