"""Network Dissection (Bau et al. 2017) and Net2Vec (Fong & Vedaldi 2018)."""

from .engine import dissect
from .net2vec import Net2VecResult, net2vec
from .result import DissectionResult, LayerDissection

__all__ = ["DissectionResult", "LayerDissection", "Net2VecResult", "dissect", "net2vec"]
