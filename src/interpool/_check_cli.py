"""``python -m interpool check``: which modules load in a worker interpreter.

Each module is imported in a fresh worker interpreter, inside a child
process: an extension module that refuses subinterpreters may abort or
crash the process that tries (CPython 3.12 runs a single-phase module's
init before it refuses it), and an import may hang.  The parent survives
both: when a child dies or stops reporting, the modules it had not reported
are checked again one at a time, each in a pool of its own that is shut
down before its result is reported, so the one that killed the child is
known exactly (``crashed`` or ``timeout``).
"""

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile

from ._check import COMMAND

__all__ = ["main"]

LOADS = ("loads", "fallback")  # what counts as loading, for the exit status

_LABELS = {
    "loads": "loads",
    "fallback": "loads, without its C accelerator",
    "refused": "refused",
    "error": "fails in a worker",
    "not-installed": "not installed",
    "crashed": "crashed the process",
    "timeout": "timed out",
}

_ADVICE = "run code that needs it with interpool.HybridPool (threads in your interpreter) or in processes"


def _parser():
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description=(
            "Import each module in a fresh interpool worker interpreter and report whether it loads, is "
            "refused (it or a module it imports does not support subinterpreters), or loads but falls back "
            "to pure Python. The exit status is 0 if every module loads."
        ),
    )
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="module to check (dotted names work)")
    parser.add_argument(
        "--installed",
        action="store_true",
        help="check every top-level module of the installed distributions (private _names left out)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument(
        "--jobs", type=_positive_int, default=None, metavar="N", help="checks run at once (default: CPUs)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=120.0,
        metavar="SECONDS",
        help="longest one import may take (default: 120)",
    )
    return parser


def _more_than_zero(convert, kind, bound):
    """An argparse ``type``: ``convert(text)``, which must be more than 0.

    ``kind`` names what ``convert`` reads ("a number") and ``bound`` says
    the limit in the error ("must be at least 1").
    """

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{bound}, got {text}")
        return value

    return parse


_positive_int = _more_than_zero(int, "a whole number", "must be at least 1")
_positive_float = _more_than_zero(float, "a number", "must be more than 0")


def _valid_name(name):
    return bool(name) and all(part.isidentifier() for part in name.split("."))


# ------------------------------------------------------------ installed


def installed_modules():
    """{top-level module: [distribution names]} for every installed distribution."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        try:
            dist_name = dist.metadata["Name"] or "?"
        except Exception:
            dist_name = "?"
        for name in _top_level(dist):
            if name.startswith("_") or not name.isidentifier():
                continue
            owners = found.setdefault(name, [])
            if dist_name not in owners:
                owners.append(dist_name)
    return dict(sorted(found.items()))


def _top_level(dist):
    """Top-level module names of a distribution: top_level.txt, else its RECORD."""
    try:
        text = dist.read_text("top_level.txt")
    except Exception:
        text = None
    if text:
        return {line.strip().replace("/", ".").partition(".")[0] for line in text.splitlines() if line.strip()}
    names = set()
    for path in dist.files or ():
        parts = path.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data", ".egg-info")):
            continue
        if len(parts) > 1:
            names.add(parts[0])  # a package directory
        elif parts[0].endswith(".py"):
            names.add(parts[0][:-3])
        elif parts[0].endswith((".so", ".pyd")):
            names.add(parts[0].partition(".")[0])  # an extension module: name.cpython-313-...so
    return {n for n in names if not n.startswith("__editable__")}


# ---------------------------------------------------------------- child


def _child(fd, jobs, modules):
    """In the child process: check ``modules``, one JSON line each on ``fd``."""
    import interpool

    from ._check import probe

    out = os.fdopen(fd, "w", buffering=1)

    def report(result):
        out.write(json.dumps(result) + "\n")
        out.flush()

    if jobs == 1:
        # One pool per module, shut down (its interpreter ended) before the
        # result goes out: whatever crashes is the module just reported on.
        for name in modules:
            with interpool.Pool(1, output="inherit") as pool:
                result = pool.submit(probe, name).result()
            report(result)
        return
    import concurrent.futures

    with interpool.Pool(jobs, max_tasks_per_worker=1, output="inherit") as pool:
        futures = {pool.submit(probe, name): name for name in modules}
        for future in concurrent.futures.as_completed(futures):
            report(future.result())


def _run_child(modules, jobs, timeout, on_result):
    """Check ``modules`` in a child process.

    Returns ``(results, failure)``: the results it reported, and None if it
    finished, else ``("crashed", why)`` or ``("timeout", why)``.
    """
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "interpool._check_cli", "--child", str(write_fd), str(jobs), *modules],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        os.close(write_fd)
        results = {}
        buffer = b""
        failure = None
        try:
            while True:
                ready, _, _ = select.select([read_fd], [], [], timeout)
                if not ready:
                    failure = ("timeout", f"did not finish importing within {timeout:g} s")
                    proc.kill()
                    break
                data = os.read(read_fd, 65536)
                if not data:
                    break
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    result = json.loads(line)
                    results[result["module"]] = result
                    on_result(result)
        finally:
            os.close(read_fd)
            returncode = proc.wait()
        if failure is None and returncode != 0:
            errors.seek(0)
            tail = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
            if returncode < 0:
                try:
                    why = signal.Signals(-returncode).name
                except ValueError:
                    why = f"signal {-returncode}"
            else:
                why = f"exit status {returncode}"
            fatal = [line for line in tail if "Fatal Python error" in line or "Error" in line]
            note = (fatal or tail or [""])[-1].strip()
            failure = ("crashed", f"{why}" + (f": {note}" if note else ""))
    return results, failure


def run_checks(modules, jobs, timeout, on_result=lambda result: None):
    """{module: result} for ``modules``, each checked in a fresh worker interpreter."""
    results = {}
    queue = list(modules)
    one_at_a_time = jobs == 1
    while queue:
        got, failure = _run_child(queue, 1 if one_at_a_time else jobs, timeout, on_result)
        results.update(got)
        rest = [name for name in queue if name not in got]
        if failure is None or not rest:
            for name in rest:  # the child ended without a word about them
                results[name] = {
                    "module": name,
                    "status": "error",
                    "detail": "the check reported nothing",
                    "blocker": None,
                }
                on_result(results[name])
            break
        if not one_at_a_time and len(rest) > 1:
            # Several were in flight: find the culprit one at a time.
            one_at_a_time = True
            queue = rest
            continue
        culprit = rest[0]
        status, why = failure
        results[culprit] = {"module": culprit, "status": status, "detail": why, "blocker": None}
        on_result(results[culprit])
        queue = rest[1:]
        one_at_a_time = jobs == 1
    return results


# ----------------------------------------------------------------- text


def describe(result):
    """The text after a module's name in the report."""
    status, detail = result["status"], result.get("detail") or ""
    label = _LABELS.get(status, status)
    if status == "loads":
        return label
    if status == "not-installed":
        return label
    if status == "refused":
        return f"{label}: {detail}; {_ADVICE}"
    if status == "fallback":
        return f"{label}: {detail}; the pure-Python version runs instead (slower)"
    return f"{label}: {detail}" if detail else label


class _Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere."""

    def __init__(self, total, enabled):
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 0

    def step(self, result):
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + "." * (width - filled)
        name = result["module"][:30]
        sys.stderr.write(f"\r\x1b[K[{bar}] {self.done}/{self.total} {name}")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _summary(results):
    counts = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts


def main(argv=None):
    """Entry point of ``python -m interpool check``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.installed and args.modules:
        parser.error("give module names or --installed, not both")
    owners = {}
    if args.installed:
        owners = installed_modules()
        modules = list(owners)
    else:
        modules = list(dict.fromkeys(args.modules))
        if not modules:
            parser.error("name at least one module to check (for example: check numpy yaml), or use --installed")
        bad = [name for name in modules if not _valid_name(name)]
        if bad:
            parser.error(f"not a module name: {bad[0]!r}")
    if args.jobs is None:
        from ._pool import default_workers

        jobs = default_workers()
    else:
        jobs = args.jobs
    progress = _Progress(len(modules), enabled=args.installed and not args.json and sys.stderr.isatty())
    try:
        found = run_checks(modules, min(jobs, max(1, len(modules))), args.timeout, progress.step)
    finally:
        progress.close()
    results = [found[name] for name in modules]
    for result in results:
        if result["module"] in owners:
            result["distributions"] = owners[result["module"]]
    ok = all(result["status"] in LOADS for result in results)
    if args.json:
        document = {
            "python": sys.version.split()[0],
            "ok": ok,
            "summary": _summary(results),
            "modules": results,
        }
        print(json.dumps(document, indent=2))
        return 0 if ok else 1
    width = max(len(name) for name in modules)
    for result in results:
        print(f"{result['module']:<{width}}  {describe(result)}")
    if args.installed:
        counts = _summary(results)
        print()
        print(f"{len(results)} modules on Python {sys.version.split()[0]}:")
        label_width = max(len(label) for label in _LABELS.values())
        for status, label in _LABELS.items():
            if counts.get(status):
                print(f"  {label:<{label_width}}  {counts[status]:>5}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
        # Every result is out.  Skip the interpreter's finalization: what
        # the checked modules left behind may crash it (CPython before
        # 3.12.4 does, gh-119213), and that is no module's result.
        os._exit(0)
    else:
        sys.exit(main())
