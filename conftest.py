"""The test suite's environment: commands run without the solve cache (solver/cache.py) unless a test
gives one (`--cache DIR`), so that no test depends on what an earlier one, or an earlier run, solved,
and nothing is written to the user's ~/.cache. Subprocesses inherit it."""

import os

os.environ["COVENANT_CACHE"] = "off"
