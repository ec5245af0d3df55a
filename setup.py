"""The optional C extension (RFC 6455 masking, ``src/ergopy/meta/websocket/_mask.c``); all the
rest of the package is declared in pyproject.toml.

``optional=True``: an install where no C compiler is found still succeeds, and the engine
uses its pure Python ``py_unmask`` instead (the same bytes, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ergopy.meta.websocket._mask", ["src/ergopy/meta/websocket/_mask.c"], optional=True),
    ]
)
