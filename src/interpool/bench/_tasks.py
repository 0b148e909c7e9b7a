"""Task functions used by the benchmarks.

Everything here must be importable in a fresh interpreter (subinterpreter or
child process) and picklable by reference, so: module-level functions only,
standard library imports only.

Caveat (CPython 3.14): ``InterpreterPoolExecutor`` ships a function whose
code looks "stateless" as bare code, run against the worker's ``__main__``
globals, instead of pickling it. The check does not look into nested code
objects, so a function whose only global references sit inside a generator
expression gets shipped that way and fails with ``NameError`` in the worker.
Task functions here therefore reference any module global they need from
their own top-level code (see ``check_loop``).
"""

import os
import random
import time

__all__ = [
    "noop",
    "identity",
    "pause",
    "sum_squares",
    "make_grid",
    "guard_path",
    "check_loop",
    "count_loops",
    "spin",
    "spin_signalled",
    "spin_recorded",
    "spin_announced",
]


# ---------------------------------------------------------------------------
# Tiny tasks (overhead)
# ---------------------------------------------------------------------------


def noop():
    """Do nothing; measures pure dispatch overhead."""
    return None


def identity(x):
    """Return the argument unchanged."""
    return x


def pause(seconds):
    """Sleep; used during warm-up so every worker gets a task."""
    time.sleep(seconds)


# ---------------------------------------------------------------------------
# CPU-bound task (scaling)
# ---------------------------------------------------------------------------


def sum_squares(n):
    """Pure-Python loop: sum of i*i for i < n (holds the GIL throughout)."""
    total = 0
    for i in range(n):
        total += i * i
    return total


# ---------------------------------------------------------------------------
# Advent of Code 2024 day 6 part 2 (grid search)
# ---------------------------------------------------------------------------

_DIRS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


def make_grid(seed=4, size=130, density=0.01, path_range=(4300, 4700)):
    """Return ``(grid, start)`` for a deterministic day-6-style puzzle.

    ``grid`` is a tuple of ``size`` strings of ``size`` characters
    (``'.'`` free, ``'#'`` obstacle, ``'^'`` the guard, facing up) and
    ``start`` the guard's ``(row, col)``.

    Uniformly random obstacles make the guard leave the grid after a few
    hundred cells, so the guard's route is laid out explicitly: a clockwise
    spiral outwards with random ring gaps, one obstacle after each leg, until
    a leg would reach the border and the guard walks off the grid. Random
    background obstacles (``density``) are sprinkled everywhere except on the
    route. Attempts are repeated (from the same seeded stream) until the
    number of distinct cells on the route falls in ``path_range``. The result
    depends only on the arguments (``random.Random`` is stable across
    Python versions).
    """
    rng = random.Random(seed)
    lo, hi = path_range
    for _attempt in range(1000):
        cells = [["#" if rng.random() < density else "." for _ in range(size)] for _ in range(size)]
        half = size // 2
        jitter = max(1, size // 16)
        r = half + rng.randrange(-jitter, jitter + 1)
        c = half + rng.randrange(-jitter, jitter + 1)
        start = (r, c)
        route = {start}
        turns = []
        legs = [rng.randrange(1, 4), rng.randrange(1, 4)]
        i = 0
        while True:
            dr, dc = _DIRS[i % 4]
            if i < 2:
                length = legs[i]
            else:
                length = legs[i - 2] + rng.choice((2, 3, 3, 4))
                legs.append(length)
            er, ec = r + dr * length, c + dc * length
            if not (0 <= er + dr < size and 0 <= ec + dc < size):
                # No room for the turning obstacle: walk off the grid.
                while 0 <= r < size and 0 <= c < size:
                    route.add((r, c))
                    r += dr
                    c += dc
                break
            for k in range(1, length + 1):
                route.add((r + dr * k, c + dc * k))
            r, c = er, ec
            turns.append((r + dr, c + dc))
            i += 1
        for pr, pc in route:
            cells[pr][pc] = "."
        for tr, tc in turns:
            cells[tr][tc] = "#"
        cells[start[0]][start[1]] = "^"
        grid = tuple("".join(row) for row in cells)
        if lo <= len(route) <= hi:
            return grid, start
    raise RuntimeError(f"no grid with a route length in {path_range} (seed={seed})")


def guard_path(grid, start):
    """Distinct cells visited by the guard, in first-visit order.

    Raises ``ValueError`` if the guard loops instead of leaving the grid.
    """
    h, w = len(grid), len(grid[0])
    r, c = start
    dr, dc = -1, 0
    order = [start]
    visited = {start}
    seen = set()
    while True:
        nr, nc = r + dr, c + dc
        if not (0 <= nr < h and 0 <= nc < w):
            return order
        if grid[nr][nc] == "#":
            state = (r, c, dr, dc)
            if state in seen:
                raise ValueError("the guard loops on this grid")
            seen.add(state)
            dr, dc = dc, -dr
        else:
            r, c = nr, nc
            if (r, c) not in visited:
                visited.add((r, c))
                order.append((r, c))


# '.', '^' -> 0 (free), '#' -> 1 (obstacle); the border added around it is 2.
_CELL_CODES = bytes.maketrans(b".#^", b"\x00\x01\x00")


def check_loop(grid, start, cell):
    """True if an extra obstacle at ``cell`` makes the guard walk in a loop.

    Deliberately rebuilds its lookup table from ``grid`` on every call (no
    caching across calls): receiving and decoding the ~17 kB grid per task is
    part of what the benchmark measures.
    """
    codes = _CELL_CODES  # top-level global reference: see the module docstring
    width = len(grid[0]) + 2
    border = b"\x02" * width
    board = bytearray(
        border + b"".join(b"\x02" + row.encode("ascii").translate(codes) + b"\x02" for row in grid) + border
    )
    board[(cell[0] + 1) * width + cell[1] + 1] = 1
    pos = (start[0] + 1) * width + start[1] + 1
    step = -width
    turn_right = {-width: 1, 1: width, width: -1, -1: -width}
    seen = set()
    while True:
        nxt = pos + step
        code = board[nxt]
        if not code:
            pos = nxt
        elif code == 1:
            state = (pos, step)
            if state in seen:
                return True
            seen.add(state)
            step = turn_right[step]
        else:
            return False


def count_loops(grid, start, cells):
    """Serial reference: how many of ``cells`` create a loop."""
    check = check_loop  # top-level global reference: see the module docstring
    return sum(1 for cell in cells if check(grid, start, cell))


# ---------------------------------------------------------------------------
# Tasks to stop (stop): pure-Python loops that never block in C
# ---------------------------------------------------------------------------


def spin(seconds):
    """Pure-Python loop for ``seconds``; returns how many rounds it made."""
    clock = time.monotonic  # top-level global reference: see the module docstring
    end = clock() + seconds
    rounds = 0
    while clock() < end:
        rounds += 1
    return rounds


def spin_signalled(started, seconds):
    """``started.set()``, then :func:`spin`: the caller knows the loop runs."""
    started.set()
    return spin(seconds)


def spin_recorded(log, index, seconds):
    """Put ``(index, start)`` on ``log``, then :func:`spin`.

    ``start`` is ``time.monotonic()`` (CLOCK_MONOTONIC is process-wide, so the
    caller's readings compare), read before the loop: a task stopped by a
    timeout cannot return it.
    """
    log.put((index, time.monotonic()))
    return spin(seconds)


def spin_announced(seconds):
    """Write ``started`` to file descriptor 1, then :func:`spin`.

    The raw write reaches the parent of a benchmark child from a thread, a
    subinterpreter or a worker process alike.
    """
    os.write(1, b"started\n")
    return spin(seconds)
