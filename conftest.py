"""Loaded before any test module: make I/O cooperative first, as every service process does."""

from chassis import green

green.patch()
