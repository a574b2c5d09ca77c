"""Network Dissection (Bau et al. 2017) and Net2Vec (Fong & Vedaldi 2018)."""

from .engine import dissect
from .result import DissectionResult, LayerDissection

__all__ = ["DissectionResult", "LayerDissection", "dissect"]
