"""Build step for the one C extension of our own: see engine/_durable_compat.c for why it exists.

Everything else about the package is declared in pyproject.toml. The extension is built only where
it is needed (Python >= 3.13), with the same compiler durable_rules' own build already requires.
"""

import sys

from setuptools import Extension, setup

setup(ext_modules=[Extension("engine._durable_compat", ["engine/_durable_compat.c"])]
      if sys.version_info >= (3, 13) else [])
