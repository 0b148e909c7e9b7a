"""Caller-side encoding of callables that cannot pickle by name.

InterpreterPoolExecutor, like the stdlib's, also sends a function that needs
no state (a lambda, a local function) as its code.  The worker side,
``interpool._worker.decode_stateless``, rebuilds it against the builtins
alone, so the code may be sent only when it would mean the same there: every
global name it reads must be, in the caller too, the builtin of that name.
"""

import builtins
import dis
import marshal
import types

__all__ = ["encode_stateless"]

# Opcodes that read a name from the globals (or a class namespace, then the
# globals) and then the builtins.
_READS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"}
_WRITES = {"STORE_GLOBAL", "DELETE_GLOBAL", "STORE_NAME", "DELETE_NAME"}


def encode_stateless(fn):
    """The marshalled code of a stateless function.

    Stateless: a plain function with no closure and no defaults, whose every
    global name resolves, in the caller, to the builtin object of that name:
    not shadowed by a module global (a module-level ``def len(...)``), and not
    replaced in the function's ``__builtins__``.  Raises TypeError otherwise.
    """
    if type(fn) is not types.FunctionType:
        raise TypeError(f"{fn!r} is not a plain function")
    if fn.__closure__ or fn.__defaults__ or fn.__kwdefaults__:
        raise TypeError(f"{fn!r} has a closure or defaults, so it is not stateless")
    module_globals = fn.__globals__
    fn_builtins = fn.__builtins__
    if isinstance(fn_builtins, types.ModuleType):
        fn_builtins = vars(fn_builtins)
    real = vars(builtins)
    missing = object()

    def check(code):
        for ins in dis.get_instructions(code):
            name = ins.argval
            if ins.opname in _READS:
                if name in module_globals:
                    raise TypeError(
                        f"{fn!r} uses the global {name!r}, which its module defines, so it is not stateless"
                    )
                value = fn_builtins.get(name, missing)
                if value is missing or real.get(name, missing) is not value:
                    raise TypeError(f"{fn!r} uses the global {name!r}, which is not a builtin, so it is not stateless")
            elif ins.opname in _WRITES:
                raise TypeError(f"{fn!r} changes the global {name!r}, so it is not stateless")
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                check(const)

    check(fn.__code__)
    return marshal.dumps(fn.__code__)
