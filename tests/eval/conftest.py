from __future__ import annotations

import pytest

from autoalign.evaluate.data import default_data_dir


@pytest.fixture(scope="session")
def shared_data():
    """The development checkout's ../shared/data (skips where an installed copy has none)."""
    path = default_data_dir()
    if path is None:
        pytest.skip("no ../shared/data beside the project (benchmark files are not shipped)")
    return path
