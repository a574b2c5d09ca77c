"""Network Dissection (Bau et al. 2017) and Net2Vec (Fong & Vedaldi 2018).

:mod:`.engine` runs the two streamed passes (thresholds from :mod:`.quantile`, concept masks from
:mod:`.concepts`) into a :mod:`.result`; :mod:`.concept_embeddings` learns Net2Vec's per-concept unit
weightings; :mod:`.overlay` draws masks for reports.
"""

from .concept_embeddings import Net2VecResult, net2vec
from .engine import dissect
from .result import DissectionResult, LayerDissection

__all__ = ["DissectionResult", "LayerDissection", "Net2VecResult", "dissect", "net2vec"]
