"""Tests of the worker shim (unittest, standard library only). They import the package from
../src, so they run from a source checkout without installing anything."""

import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
