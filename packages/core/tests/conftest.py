from __future__ import annotations

from datetime import UTC, datetime

import pytest

from troupe.clock import FrozenClock
from troupe.testing import MemoryKube


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


@pytest.fixture
def kube() -> MemoryKube:
    return MemoryKube()
