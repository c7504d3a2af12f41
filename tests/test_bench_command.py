"""`fastgd bench` on tiny sizes: the short table has its rows, each says what it times, the figures are finite,
the backend is the one LinearRegressor uses by default, and the output fits one screen. (No timing assertions:
the machine is shared.)"""

import math

import pytest

from fastgd import _engine, bench
from fastgd.__main__ import main

PERS = {"per pass", "per epoch", "per fit", "per solve"}


@pytest.fixture(scope="module")
def result():
    return bench.run(n=3000, d=6, repeat=1, torch=False, log=lambda *a: None)


def test_rows_say_what_they_time(result):
    rows = result["rows"]
    assert 8 <= len(rows) <= 12
    assert {per for per, _, _ in rows} == PERS
    assert all(math.isfinite(s) and s > 0 for _, _, s in rows)
    whats = [what for _, what, _ in rows]
    assert len(set(whats)) == len(whats)
    assert any("floor" in w for w in whats) and any("SGDRegressor()" in w for w in whats)
    assert any(w.startswith("fastgd LinearRegressor(), defaults:") and "x optimum" in w for w in whats)
    assert all(math.isfinite(r) and r > 0 for r in result["ratios"].values())


def test_times_the_backend_users_get(result):
    backend = "native" if _engine.native_available() else "numba"
    assert f"backend {backend}" in result["header"]
    assert f"batch {bench.default_batch_size(3000, 6)}," in result["header"]  # the result fixture: 3000 x 6


def test_table_fits_one_screen(result):
    text = bench.format_table(result)
    lines = text.splitlines()
    assert len(lines) <= 30 and max(map(len, lines)) <= 110
    for per, what, _ in result["rows"]:
        assert any(line.startswith(per) and what in line for line in lines)
    assert sum(line.startswith("* ") for line in lines) == len(result["sentences"]) >= 4
    assert "benchmarks/full_bench.py" in text


def test_command_line(capsys):
    assert main(["bench", "--n", "2000", "--d", "4", "--repeat", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "per epoch" in out and "per fit" in out and "per solve" in out and "2,000 x 4" in out
    for bad in (["--threads", "0"], ["--n", "-5"], ["--threads", "999"]):
        with pytest.raises(SystemExit) as exc:
            main(["bench", *bad])
        assert exc.value.code == 2
    assert bad[0] in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--n", "1"], ["--n", "10", "--d", "100"], ["--n", "5", "--d", "4"]])
def test_too_few_rows_for_the_optimums_ratio_is_an_argument_error(capsys, argv):
    """With at most d + 1 rows the least-squares optimum's training MSE is 0: the fit's ratio to it would be a
    division by zero or nonsense, so the command refuses the sizes, naming them, before measuring."""
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--no-torch", "--repeat", "1", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "--n must exceed --d + 1" in captured.err and "Traceback" not in captured.err
    assert "measuring" not in captured.out


def test_fit_over_solve_is_the_tables_ratio_with_the_range_of_interleaved_rounds():
    """A single cold timing of each makes the fit/solve ratio swing from run to run: both are timed in
    interleaved rounds, and the sentence states the ratio of the two times the table shows (the fastest of
    each), naming that statistic, with the range of the ratio within a round."""
    res = bench.run(n=2000, d=4, repeat=2, torch=False, log=lambda *a: None)
    r = res["ratios"]
    fit, solve = (next(s for per, _, s in res["rows"] if per == p) for p in ("per fit", "per solve"))
    assert r["fit_over_ridge"] == fit / solve
    sentence = next(s for s in res["sentences"] if "Cholesky" in s)
    assert f"takes {r['fit_over_ridge']:.2f}x" in sentence
    assert "the fastest of 2 interleaved rounds of each, as in the table; within a round the ratio ranged" in sentence
    assert "best of 2 rounds" in res["header"]
