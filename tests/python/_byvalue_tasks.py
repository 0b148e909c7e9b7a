"""Importable helpers for test_by_value.py (they go by name)."""

import sys


def has_module(name):
    return name in sys.modules


def call(fn, *args):
    return fn(*args)
