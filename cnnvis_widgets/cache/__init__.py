"""Results kept on disk, so that nothing computed is lost to a re-run cell or a kernel restart.

Engines (``top_activations``, ``activation_maximization``, ``dissect``) look up their call here before
computing, keyed by (model fingerprint, layer, method, settings, dataset fingerprint, seed), and store what
they compute; an interrupted ``top_activations`` keeps the images it had scanned, an interrupted
``activation_maximization`` the units it had finished, and the next identical call resumes from there.
``cv.cache.configure(directory=..., max_size="5GB", enabled=True)`` or the environment
(``CNNVIS_RESULT_CACHE``, ``CNNVIS_RESULT_CACHE_SIZE``) set it up; ``cnnvis cache list|clear`` manages it.
"""

from .fingerprints import dataset_fingerprint, model_fingerprint
from .results import Slot, configure, default_cache, resolve, slot
from .store import CacheEntry, CorruptCacheEntryWarning, ResultCache, parse_size

__all__ = ["CacheEntry", "CorruptCacheEntryWarning", "ResultCache", "Slot", "configure",
           "dataset_fingerprint", "default_cache", "model_fingerprint", "parse_size", "resolve", "slot"]
