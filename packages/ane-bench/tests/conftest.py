"""Suite-wide: under ``CI=true`` no test may skip (see :mod:`ane_core.skips`)."""

from ane_core.skips import pytest_runtest_makereport  # noqa: F401 (the CI=true hook)
