"""Notebook 05's tables and the results commands' output did not move when the statistics
went onto statsmodels / SciPy / rliable.

The fixtures (``tests/fixtures/success_golden/``, written by ``tests/success_golden.py``
with the hand-written statistics before the move) are rebuilt from the bundled example
results and compared file by file:

- the commands' stdout (``cli_*.txt``) and the study's verdict and metrics
  (``*study.json``) must be identical, character for character;
- every other CSV column must be identical except floats, which may differ by 1e-13
  absolute or relative (in the table's own unit: % for rates and bounds, p-values as
  they are). Two columns do, by rounding alone: Wilson bounds (statsmodels' arithmetic
  instead of SciPy's ``binomtest``; at most 2.8e-14 percentage points, relative 1.5e-15)
  in ``tasks.csv`` and the published rows of ``suite_table.csv``, and Benjamini-Hochberg
  adjusted p-values (statsmodels' ``multipletests`` instead of SciPy's
  ``false_discovery_control``; at most 5.6e-17) in ``fisher_bh_paired_per_suite.csv``.
  Holm, the CMH statistic and p-value, the exact tests, the bootstrap intervals and the
  power / sample-size numbers came out bit for bit the same.
"""

import io

import numpy as np
import pandas as pd
import pytest
import success_golden

TOLERANCE = 1e-13


@pytest.fixture(scope="module")
def rebuilt():
    return success_golden.build()


def _fixture_names():
    return sorted(p.name for p in success_golden.FOLDER.iterdir() if p.suffix != ".md")


def test_every_fixture_is_rebuilt(rebuilt):
    assert sorted(rebuilt) == _fixture_names()


@pytest.mark.parametrize("name", _fixture_names())
def test_golden_numbers_unchanged(rebuilt, name):
    stored = (success_golden.FOLDER / name).read_text()
    text = success_golden.to_text(rebuilt[name])
    if not name.endswith(".csv"):
        assert text == stored
        return
    old, new = pd.read_csv(io.StringIO(stored)), pd.read_csv(io.StringIO(text))
    assert list(new.columns) == list(old.columns)
    assert new.shape == old.shape
    for column in old.columns:
        if old[column].dtype.kind == "f":
            np.testing.assert_allclose(
                new[column].to_numpy(float),
                old[column].to_numpy(float),
                rtol=TOLERANCE,
                atol=TOLERANCE,
                equal_nan=True,
                err_msg=f"{name}: {column}",
            )
        else:
            pd.testing.assert_series_equal(new[column], old[column], obj=f"{name}: {column}")
