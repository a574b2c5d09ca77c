import os
import tempfile
from pathlib import Path

import pytest

# One cache for the session's generated datasets, unless the caller chose one (make test sets it).
os.environ.setdefault("CNNVIS_CACHE", str(Path(tempfile.gettempdir()) / "cnnvis-test-cache"))
os.environ.setdefault("CNNVIS_SMALL", "1")
# Every test computes what it checks: the result cache is off unless a test turns it on (tests/test_cache.py).
os.environ["CNNVIS_RESULT_CACHE"] = "off"

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def mini():
    import cnnvis_widgets as cv

    return cv.load_model("mini_alexnet", device="cpu")


@pytest.fixture(scope="session")
def world():
    import cnnvis_widgets as cv

    return cv.datasets.shapeworld(split="val")


@pytest.fixture(scope="session")
def shown():
    """``shown(obj)``: the display data IPython produces for ``obj`` (as when a cell ends with it), from a real
    IPython shell with cnnvis_widgets' display formatters registered."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from cnnvis_widgets.widgets import register

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    assert register(shell)

    def display_data(obj) -> dict:
        data, _ = shell.display_formatter.format(obj)
        return data

    yield display_data
    InteractiveShell.clear_instance()
