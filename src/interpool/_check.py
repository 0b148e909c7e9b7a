"""Which modules load in a worker interpreter: the probe that runs in a worker.

``python -m interpool check`` (``_check_cli``) runs :func:`probe` in fresh
worker interpreters.  This module is also what error messages point to
(:func:`check_hint`), so it imports nothing at module level: a worker may
load it to build an error.
"""

COMMAND = "python -m interpool check"

__all__ = ["COMMAND", "check_hint", "probe"]

_REFUSAL = "does not support loading in subinterpreters"

# Modules whose C accelerator may be refused in a worker while the module
# itself still loads, on its pure-Python code: {module: (accelerator, what it is)}.
ACCELERATORS = {
    "yaml": ("yaml._yaml", "the LibYAML parser and emitter"),
    "msgpack": ("msgpack._cmsgpack", "the C packer and unpacker"),
    "simplejson": ("simplejson._speedups", "the C speedups"),
    "markupsafe": ("markupsafe._speedups", "the C speedups"),
    "datetime": ("_datetime", "the C datetime types"),
    "decimal": ("_decimal", "libmpdec"),
}


def check_hint(module=None):
    """A sentence for errors about a module that refused to load in a worker."""
    target = module if module else "MODULE ..."
    return f"`{COMMAND} {target}` tells in advance which modules load in worker interpreters."


def _refusal(exc):
    """The module named by a subinterpreter refusal in ``exc``'s chain, else None."""
    seen = set()
    fallback = None
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        at = text.find(_REFUSAL)
        if isinstance(exc, ImportError) and at >= 0:
            # "module NAME does not support loading in subinterpreters",
            # possibly quoted inside a library's own message.
            words = text[:at].split()
            if len(words) >= 2 and words[-2] == "module":
                return words[-1].strip("'\"")
            fallback = fallback or getattr(exc, "name", None)
        exc = exc.__cause__ or exc.__context__
    return fallback


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _accelerator_refused(name):
    """(accelerator, why) when ``name`` loaded without its C accelerator here."""
    import importlib
    import importlib.util
    import sys

    entry = ACCELERATORS.get(name)
    if entry is None:
        return None
    accelerator, what = entry
    if accelerator in sys.modules:
        return None
    try:
        if importlib.util.find_spec(accelerator) is None:
            return None  # not built for this installation: no loss here
    except ImportError:
        pass  # a finder refused it: present, but not for workers
    except Exception:
        return None
    try:
        importlib.import_module(accelerator)
    except BaseException as exc:
        blocker = _refusal(exc)
        why = f"{blocker} does not support subinterpreters" if blocker else _one_line(exc)
        return accelerator, f"{accelerator} ({what}) does not load here: {why}"
    return None


def _failed(result, exc):
    """``result`` for an import that raised ``exc``: refused, or another error."""
    blocker = _refusal(exc)
    if blocker:
        result.update(status="refused", blocker=blocker, detail=f"{blocker} does not support subinterpreters")
    else:
        result.update(status="error", detail=_one_line(exc))
    return result


def probe(name):
    """Import ``name`` in this (worker) interpreter and say how it went.

    Returns a dict: ``status`` is ``"loads"``, ``"fallback"`` (loads, but
    without its C accelerator), ``"refused"`` (a module it needs does not
    support subinterpreters; ``blocker`` names it), ``"not-installed"`` or
    ``"error"``; ``detail`` says more.
    """
    import importlib

    result = {"module": name, "status": "loads", "detail": "", "blocker": None}
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            result.update(status="not-installed", detail="not installed")
            return result
        return _failed(result, exc)
    except BaseException as exc:  # noqa: BLE001 - a module may raise anything, SystemExit included
        return _failed(result, exc)
    fallback = _accelerator_refused(name.partition(".")[0] if "." not in name else name)
    if fallback is not None:
        result.update(status="fallback", blocker=fallback[0], detail=fallback[1])
    return result
