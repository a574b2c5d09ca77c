"""Datasets: the Broden on-disk format, ShapeWorld (the embedded concept world written in it), and real
photos that load offline (scikit-image's samples and a probe set of crops of them)."""

from .broden import Broden, BrodenFormatError, BrodenWriter
from .photos import GRAY_PHOTOS, PHOTOS, PhotoCrops, photo, photos
from .shapeworld import shapeworld

__all__ = ["Broden", "BrodenFormatError", "BrodenWriter", "GRAY_PHOTOS", "PHOTOS", "PhotoCrops", "photo", "photos",
           "shapeworld"]
