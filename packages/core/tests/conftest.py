from __future__ import annotations

from datetime import UTC, datetime

import pytest

from troupe.clock import FrozenClock


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
