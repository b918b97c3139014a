"""An unsolved or wrong exercise shows a short verdict in a real kernel, and nbgrader still
scores its test cell 0 (``determine_grade`` is what nbgrader's autograde uses per cell)."""

import nbformat
from nbclient import NotebookClient
from nbgrader.utils import determine_grade


def _test_cell(source: str, points: float = 2.0):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["raises-exception"]
    cell.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": True,
        "points": points,
        "grade_id": "t",
        "schema_version": 3,
    }
    return cell


def test_failed_check_is_a_compact_error_that_scores_zero():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from lessonlib.exercises import check"),
        _test_cell('check("01.l2_penalty", lambda w, lam: lam * (w**2).sum())'),  # wrong
        _test_cell('check("01.lam_best")'),  # unsolved: lam_best never assigned
        _test_cell('check("01.l2_penalty", lambda w, lam: lam / 2 * (w**2).sum())'),  # right
        nbformat.v4.new_code_cell("print('Run All got here')"),
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    wrong, unsolved, right, last = nb.cells[1:]
    for cell, says in ((wrong, "1/2 is missing"), (unsolved, "not solved yet")):
        (error,) = [o for o in cell.outputs if o.output_type == "error"]
        text = "\n".join(error.traceback)
        assert "✘" in text and says in text, text
        assert "Traceback" not in text and "__init__.py" not in text
        assert len(error.traceback) <= 4
        assert determine_grade(cell) == (0, 2.0)
    assert determine_grade(right) == (2.0, 2.0)
    assert "Run All got here" in last.outputs[0].text
