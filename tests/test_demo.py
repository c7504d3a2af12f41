"""The `fastgd` command: the demo fit, `fastgd demo` without matplotlib, and lazy imports per subcommand."""

import sys

import pytest

import fastgd
from fastgd.__main__ import main


def _block(monkeypatch, *names):
    """Make ``import name`` (and its submodules) fail as if the module were not installed."""
    for key in [k for k in sys.modules if any(k == n or k.startswith(n + ".") for n in names)]:
        monkeypatch.delitem(sys.modules, key)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)  # the import system raises ModuleNotFoundError
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and sys.modules[parent] is not None:
            monkeypatch.delattr(sys.modules[parent], child, raising=False)


def test_demo_runs_and_learns(capsys):
    assert main(["--n-samples", "5000", "--n-features", "5"]) == 0
    out = capsys.readouterr().out
    r2 = [line for line in out.splitlines() if line.startswith("R^2")][0].split()
    assert float(r2[1]) > 0.99 and abs(float(r2[1]) - float(r2[-1])) < 1e-6  # same R^2 as LinearRegression


def test_plain_fastgd_imports_neither_the_benchmark_nor_matplotlib(monkeypatch, capsys):
    _block(monkeypatch, "fastgd.bench", "matplotlib")
    assert main(["--n-samples", "2000", "--n-features", "3"]) == 0
    assert "R^2" in capsys.readouterr().out


def test_demo_without_matplotlib_names_the_extra(monkeypatch, capsys, tmp_path):
    _block(monkeypatch, "matplotlib", "fastgd.bench")
    out = tmp_path / "x.png"
    assert main(["demo", "step-sizes-1d", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert 'pip install "fastgd[plots]"' in err and "matplotlib" in err
    assert not out.exists()


def test_subcommand_help_and_errors(capsys):
    for argv in (["demo", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "fastgd demo" in out and "step-sizes-1d" in out and "fastgd bench" in out and "--quick" in out
    for argv in (["--bogus"], ["demo", "no-such-example"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert fastgd.__version__  # the package itself stays importable after the blocks above are undone


@pytest.mark.parametrize("argv", [["--n-samples", "0"], ["--n-features", "-1"], ["--optimizer", "bogus"],
                                  ["--batch-size", "-3"], ["--batch-size", "x"]])
def test_demo_arguments_out_of_range_are_one_line_errors(capsys, argv):
    """As the subcommands': argparse's usage and a one-line error naming the argument, exit code 2, no
    traceback (and no fit started)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err and "Traceback" not in err


@pytest.mark.parametrize("out, says", [("missing/x.png", "does not exist: create it first"),
                                       ("x.txt", "must end in .png"), ("x", "must end in .png"),
                                       (".", "must end in .png")])
def test_demo_out_that_cannot_be_written_is_an_argument_error(capsys, tmp_path, monkeypatch, out, says):
    """--out in a missing folder or in a format matplotlib does not write: one line naming --out, exit 2,
    before the example runs (not a traceback after it)."""
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["demo", "step-sizes-1d", "--out", out])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "argument --out" in captured.err and says in captured.err and "Traceback" not in captured.err
    assert "Running the example" not in captured.out and list(tmp_path.iterdir()) == []
