"""Shared paths and switches for the client's tests.

Unit tests need nothing but the venv. Integration tests need a running Segflow
deployment; the Swift XCTest PythonClientTests starts one (embedded broker, encoder,
decoder) and passes it here through the environment:

  SEGFLOW_TEST_BROKERS        bootstrap servers
  SEGFLOW_TEST_TOPIC_PREFIX   the services' --topic-prefix
  SEGFLOW_TEST_OUT            directory for the answers the XCTest compares with Swift's
  SEGFLOW_TEST_REQUIRE=1      missing settings fail instead of skipping
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[1]
REPO = Path(__file__).resolve().parents[4]
SAM_FIXTURES = REPO / "Tests" / "SAMTests" / "Fixtures"
IMAGING_FIXTURES = REPO / "Tests" / "ImagingTests" / "Fixtures"

sys.path.insert(0, str(CLIENT_DIR))


def require_or_skip(reason: str) -> None:
    """Fails when the caller demanded the full suite (SEGFLOW_TEST_REQUIRE=1, as the
    XCTest and CI do), skips otherwise."""
    if os.environ.get("SEGFLOW_TEST_REQUIRE") == "1" or os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
