"""A C extension that refuses subinterpreters (single-phase init) fails the task with ImportError."""

import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

import interpool
from conftest import BEHAVIOUR

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR

EXT_NAME = "_interpool_test_singlephase"
HELPER_NAME = "_interpool_test_singlephase_user"

EXT_SOURCE = f"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *unused) {{ return PyLong_FromLong(42); }}

static PyMethodDef methods[] = {{
    {{"answer", answer, METH_NOARGS, NULL}},
    {{NULL, NULL, 0, NULL}},
}};

static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{EXT_NAME}", NULL, -1, methods}};

PyMODINIT_FUNC PyInit_{EXT_NAME}(void) {{ return PyModule_Create(&def); }}
"""

HELPER_SOURCE = f"""
def use_extension():
    import {EXT_NAME}
    return {EXT_NAME}.answer()
"""


def _compiler():
    cc = (sysconfig.get_config_var("CC") or "").split()
    if cc and shutil.which(cc[0]):
        return cc
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    return None


@pytest.fixture(scope="session")
def singlephase_dir(tmp_path_factory):
    """A directory, on sys.path, holding a single-phase-init extension and a module using it."""
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler found to build the single-phase-init test extension")
    root = tmp_path_factory.mktemp("singlephase")
    source = root / f"{EXT_NAME}.c"
    source.write_text(EXT_SOURCE)
    target = root / (EXT_NAME + importlib.machinery.EXTENSION_SUFFIXES[0])
    cmd = [*cc, "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"], str(source), "-o", str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"compiling the test extension failed:\n{' '.join(cmd)}\n{proc.stderr}")
    (root / f"{HELPER_NAME}.py").write_text(HELPER_SOURCE)
    sys.path.insert(0, str(root))  # before any pool of these tests exists: workers copy sys.path
    yield root
    sys.path.remove(str(root))


@pytest.fixture
def helper(singlephase_dir):
    import importlib

    return importlib.import_module(HELPER_NAME)


def test_extension_works_in_the_main_interpreter(helper):
    assert helper.use_extension() == 42


@pytest.mark.timeout(30)
def test_task_importing_singlephase_extension_raises_import_error(helper, make_pool):
    pool = make_pool(1)
    future = pool.submit(helper.use_extension)
    with pytest.raises(ImportError) as info:
        future.result(timeout=30)
    message = str(info.value)
    assert EXT_NAME in message
    assert re.search(r"does not support loading in subinterpreters", message)


@pytest.mark.timeout(30)
def test_import_error_notes_explain_the_subinterpreter_limit(helper, make_pool):
    pool = make_pool(1)
    exc = pool.submit(helper.use_extension).exception(timeout=30)
    assert isinstance(exc, ImportError)
    notes = "\n".join(getattr(exc, "__notes__", []))
    assert "does not support subinterpreters" in notes
    assert f"import {EXT_NAME}" in notes  # the worker traceback shows the failing import
    # The hint names the module, the fix and the command that checks modules in advance.
    assert f"interpool: {EXT_NAME} cannot be imported in a worker interpreter" in notes
    assert "interpool.HybridPool" in notes and "ProcessPoolExecutor" in notes
    assert f"`python -m interpool check {EXT_NAME}`" in notes


@pytest.mark.timeout(30)
def test_import_error_hint_names_only_existing_interpool_apis(helper, make_pool):
    pool = make_pool(1)
    exc = pool.submit(helper.use_extension).exception(timeout=30)
    notes = "\n".join(getattr(exc, "__notes__", []))
    named = set(re.findall(r"interpool\.(\w+)", notes))
    assert named, notes
    assert {name for name in named if not hasattr(interpool, name)} == set()


@pytest.mark.timeout(30)
def test_pool_keeps_working_after_the_import_error(helper, make_pool):
    pool = make_pool(1)
    with pytest.raises(ImportError):
        pool.submit(helper.use_extension).result(timeout=30)
    with pytest.raises(ImportError):  # and again: the refusal is not cached as success
        pool.submit(helper.use_extension).result(timeout=30)
    assert pool.submit(os.getpid).result(timeout=30) == os.getpid()
