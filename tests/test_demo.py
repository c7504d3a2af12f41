from fastgd.__main__ import main


def test_demo_runs_and_learns(capsys):
    assert main(["--n-samples", "5000", "--n-features", "5"]) == 0
    out = capsys.readouterr().out
    r2 = [line for line in out.splitlines() if line.startswith("R^2")][0].split()
    assert float(r2[1]) > 0.99 and abs(float(r2[1]) - float(r2[-1])) < 1e-6  # same R^2 as LinearRegression
