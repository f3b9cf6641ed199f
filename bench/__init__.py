"""Benchmarks run the platform in development mode: development keys and accounts."""

import os

os.environ.setdefault("PLATFORM_ENV", "development")
