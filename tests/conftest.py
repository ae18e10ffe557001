"""Suite-wide fixtures."""

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts with structlog's defaults: a CLI test configuring the level to
    'warning' must not hide the info lines another test captures."""
    yield
    structlog.reset_defaults()
