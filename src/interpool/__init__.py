"""interpool: every core from Python, through own-GIL subinterpreters.

>>> import interpool
>>> with interpool.Pool(2) as pool:
...     list(pool.map(abs, [-1, -2, 3]))
[1, 2, 3]
"""

from ._core import Shared, SharedBuffer, share
from ._errors import BrokenPool, RemoteError, RemoteTraceback
from ._executor import InterpreterPoolExecutor
from ._future import Future
from ._pool import Pool, default_workers

__all__ = [
    "BrokenPool",
    "Future",
    "InterpreterPoolExecutor",
    "Pool",
    "RemoteError",
    "RemoteTraceback",
    "Shared",
    "SharedBuffer",
    "default_workers",
    "share",
]

__version__ = "0.1.0"
