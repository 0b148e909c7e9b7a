"""Worker output in a real Jupyter kernel: a notebook executed with nbclient and ipykernel."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

HERE = os.path.dirname(os.path.abspath(__file__))


def run_notebook(cells, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    # The kernel runs this interpreter (jupyter_client's native "python3"
    # kernel is sys.executable with ipykernel).
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return nb


def stream_text(cell, name):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == name)


def test_worker_prints_appear_in_the_cell_output(tmp_path):
    nb = run_notebook(
        [
            f"import sys; sys.path.insert(0, {HERE!r})\nimport interpool, _output_tasks\npool = interpool.Pool(2)",
            "results = list(pool.map(_output_tasks.shout, range(4)))\nprint('results', results)",
            "import sys\npool.submit(_output_tasks.to_stderr, 'careful').result()",
            "import logging\n"
            "logging.basicConfig(format='%(interpool_worker)s %(levelname)s %(message)s', force=True)\n"
            "pool2 = interpool.Pool(1)\n"
            "pool2.submit(_output_tasks.log_things, 'nb').result()\n"
            "pool2.shutdown()",
            "pool.shutdown()",
        ],
        tmp_path,
    )
    out = stream_text(nb.cells[1], "stdout").splitlines()
    assert sorted(out[:-1]) == ["shout 0", "shout 1", "shout 2", "shout 3"]
    assert out[-1] == "results [0, 1, 2, 3]"
    assert stream_text(nb.cells[2], "stderr") == "careful\nraw careful\n"
    log = stream_text(nb.cells[3], "stderr")
    assert "interpool-0 WARNING warning two\n" in log
    assert "interpool-0 ERROR failed\nTraceback" in log
    # Nothing leaked to the kernel's file descriptors, nor into other cells.
    assert stream_text(nb.cells[0], "stdout") == stream_text(nb.cells[4], "stdout") == ""
