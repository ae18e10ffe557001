"""Suite-wide fixtures."""

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts with no icsflow log handler and structlog's defaults: a CLI test that
    configured logging on its own (since closed) stderr must not leak into the next test."""
    yield
    from icsflow.workflow.logging import reset_logging

    reset_logging()
    structlog.reset_defaults()
