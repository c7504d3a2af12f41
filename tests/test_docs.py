"""The documentation builds without warnings, renders its formulas without the network, keeps prose out of the
API's parameter lists, names only modules that exist, and (when Chromium is installed) looks right in a
browser: docs/check_screenshots.py."""

import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS))


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("latex2mathml")
    out = tmp_path_factory.mktemp("html")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def test_docs_build(html):
    for page in ("index", "user-guide", "examples", "benchmarks", "design", "api"):
        assert (html / f"{page}.html").exists()
    guide = (html / "user-guide.html").read_text()
    assert "Adamax" in guide and "momentum_decay=0.004" in guide  # the table generated from the registry
    header = re.search(r"<thead>(.*?)</thead>", guide, re.S).group(1)
    assert header.count("<th") == 4  # name (class) | update | hyperparameters | start rate: fits 960 px
    assert len(list((html / "_images").glob("*.png"))) >= 5


def test_formulas_are_mathml_and_nothing_comes_from_the_network(html):
    guide = (html / "user-guide.html").read_text()
    assert guide.count("<math ") >= 10 and 'alttext="\\rho"' in guide
    examples = (html / "examples.html").read_text()
    assert examples.count("<math ") >= 15
    for page in html.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script[^>]*mathjax", text, re.I), page.name
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', text)
        assert not remote, (page.name, remote)
        body = re.sub(r"<(script|style|math|pre|code)\b.*?</\1>", "", text, flags=re.S)
        assert "\\(" not in body and "$$" not in body, page.name  # no TeX left unrendered


def test_mathml_converter():
    import mathml
    from sphinx.errors import ExtensionError

    out = mathml._convert(r"|x_k| = \lVert x\rVert", "inline")
    assert out.startswith("<math alttext=") and 'display="inline"' in out
    assert out.count('lspace="0" rspace="0"') == 4  # bars typeset like TeX's, without operator spacing
    with pytest.raises(ExtensionError, match=r"\\foo"):
        mathml._convert(r"\foo{x}", "block")  # a command latex2mathml lacks fails the build, named


def test_prose_after_parameters_goes_to_notes():
    pytest.importorskip("sphinx")
    from notes_section import move_free_text_to_notes
    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import NumpyDocstring

    def parsed(lines, obj):
        out = str(NumpyDocstring(lines, Config(napoleon_use_param=True), what="class", obj=obj))
        return re.findall(r"^:param (.+?):", out, re.M), out

    def f(a, penalty=None):
        """One line.

        Parameters
        ----------
        a : int
            The a.
        penalty : {None, "l2"}, default=None

        Defaults: a is one;
        no penalty, so the target is least squares.
        """

    lines = inspect.getdoc(f).splitlines()
    names, _ = parsed(lines, f)
    assert "step; no penalty" not in names and "no penalty" in names  # the bug: prose became parameters
    fixed = list(lines)
    assert move_free_text_to_notes(fixed, set(inspect.signature(f).parameters)) is not None
    names, text = parsed(fixed, f)
    assert names == ["a", "penalty"] and ".. rubric:: Notes" in text and "Defaults: a is one;" in text
    assert move_free_text_to_notes(list(fixed), {"a", "penalty"}) is None  # prose already in a section: no-op

    import fastgd

    lines = inspect.getdoc(fastgd.LinearRegressor).splitlines()
    move_free_text_to_notes(lines, set(inspect.signature(fastgd.LinearRegressor).parameters))
    names, _ = parsed(lines, fastgd.LinearRegressor)
    assert set(names) == set(fastgd.LinearRegressor().get_params())  # every parameter, nothing else


def test_api_page_lists_exactly_the_estimators_parameters(html):
    import fastgd

    page = (html / "api.html").read_text()
    fields = page[page.index('Parameters<span class="colon">'):]
    fields = fields[:fields.index("</ul>")]  # LinearRegressor's parameter list
    names = re.findall(r"<li><p><strong>(.+?)</strong>", fields)
    assert names and set(names) == set(fastgd.LinearRegressor().get_params())  # no prose as fake parameters
    text = re.sub(r"<[^>]+>", "", page)
    entry = re.search(r"penalty \((.*?)\)", text).group(1)
    assert "None" in entry and "elasticnet" in entry and "(step; no)" not in text  # was "penalty (step; no)"


def test_docs_name_only_modules_and_files_that_exist():
    for page in DOCS.glob("*.md"):
        text = page.read_text()
        for path in re.findall(r"\b((?:fastgd|docs|tests|benchmarks)/[\w/.-]+\.(?:py|pyx|md|txt))\b", text):
            assert (ROOT / path).exists(), (page.name, path)
        for dotted in set(re.findall(r"`(fastgd(?:\.\w+)+)", text)):
            parts = dotted.split(".")
            for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                except ImportError:
                    continue
                for attr in parts[i:]:
                    assert hasattr(obj, attr), (page.name, dotted)
                    obj = getattr(obj, attr)
                break
            else:
                pytest.fail(f"{page.name} names {dotted}, which does not exist")


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome",
                                                      "google-chrome-stable")),
                    reason="Chromium not installed (apt-get install chromium)")
def test_pages_in_a_browser_without_network(html, tmp_path):
    """Formulas laid out, no table, formula or figure wider than the text column, figures unscaled, nothing
    from the network: docs/check_screenshots.py on the pages with formulas, tables and figures."""
    import check_screenshots

    pages = ("user-guide.html", "examples.html", "api.html")
    results = check_screenshots.check(html, tmp_path, check_screenshots.find_browser(), pages=pages,
                                      full_page=False)
    assert sorted(results) == sorted(pages)
    problems = {name: r["problems"] for name, r in results.items() if r["problems"]}
    assert not problems
    assert results["user-guide.html"]["formulas"] >= 10 and results["examples.html"]["images"] == 5
    assert (tmp_path / "examples.png").stat().st_size > 50_000


def test_docstring_examples_run_as_shown():
    """The examples users copy (``fastgd.minimize``'s) give the results printed next to them (success=True)."""
    import doctest

    import fastgd

    for obj in (fastgd.minimize,):
        finder = doctest.DocTestFinder(recurse=False)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        tests = finder.find(obj, obj.__name__, globs={})
        assert tests and tests[0].examples
        for test in tests:
            runner.run(test)
        assert runner.failures == 0, obj.__name__


def _bad_page(tmp_path):
    """A page with each layout defect the screenshot check must name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plt.imsave(tmp_path / "fig.png", np.linspace(0, 1, 120 * 200).reshape(120, 200))
    long_line = "x = " + " + ".join(["value"] * 60)
    (tmp_path / "bad.html").write_text(f"""<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<div class="body" style="width: 600px">
<p>The table:
| schedule | rate |
|---|---|
| Constant() | lr |</p>
<p>Schedules:
    Constant()                    lr
    InverseScaling(power_t)       lr / t**power_t
    Exponential(gamma)            lr * gamma**(t - 1)</p>
<p>Time to the optimum: 1 s in 2 epochs
Cold process, numba: 1.2 s
Per-row cost by n: 30 ns
By d: 15 ns/row</p>
<img src="fig.png">
<div class="highlight"><pre style="overflow-x: auto">{long_line}</pre></div>
</div>
<div class="footer">&copy;. | Powered by Sphinx</div>
</body></html>""", encoding="utf-8")
    (tmp_path / "good.html").write_text("""<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<div class="body" style="width: 600px"><p>Prose that wraps
over several lines: nothing wrong
here.</p>
<figure><img src="fig.png"><figcaption><p>What the figure shows.</p></figcaption></figure></div>
<div class="footer">&copy; Copyright the fastgd authors.</div></body></html>""", encoding="utf-8")


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome",
                                                      "google-chrome-stable")),
                    reason="Chromium not installed (apt-get install chromium)")
def test_screenshot_check_names_each_layout_defect(tmp_path):
    """Run-on tables and lines, a figure without a caption, a horizontal scrollbar and a placeholder footer
    are each reported (the check once passed pages with all of them); a clean page passes."""
    pytest.importorskip("matplotlib")
    import check_screenshots

    _bad_page(tmp_path)
    results = check_screenshots.check(tmp_path, tmp_path / "shots", check_screenshots.find_browser(),
                                      pages=("bad.html", "good.html"), full_page=False)
    bad = "\n".join(results["bad.html"]["problems"])
    assert "a Markdown table shows as one paragraph" in bad
    assert "columns aligned with spaces show as one paragraph" in bad
    assert "'Label: ...' lines run into one paragraph" in bad
    assert "figure fig.png has no caption" in bad
    assert "pre is clipped or scrolls sideways" in bad
    assert "the footer shows a placeholder: '©. | Powered by Sphinx'" in bad
    assert results["good.html"]["problems"] == []


def test_public_names_the_docs_use():
    """``fastgd.EpochInfo`` (what callbacks receive) is public, the old private path still works, and the
    synthetic-data helper no longer shares scikit-learn's name (the old name stays as an alias)."""
    import fastgd
    from fastgd import _training, datasets

    assert fastgd.EpochInfo is _training.EpochInfo and "EpochInfo" in fastgd.__all__
    assert "datasets" in fastgd.__all__ and fastgd.datasets is datasets
    assert datasets.make_regression is datasets.make_linear_data
    api = (DOCS / "api.md").read_text()
    assert "fastgd.EpochInfo" in api and "make_linear_data" in api and "fastgd.datasets" in api


def test_api_page_documents_what_users_read(html):
    """fit's parameters, the fitted attributes as entries (not "Type: int, epochs run."), the public
    EpochInfo and datasets, a footer without a placeholder."""
    page = (html / "api.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    for name in ("max_iter_", "stop_reason_", "eval_loss_curve_", "coef_init", "sample_weight", "EpochInfo",
                 "make_linear_data", "validation_fraction", "random_state", "fit_intercept"):
        assert name in text, name
    assert "Type: int, epochs run." not in text and "Adding an optimizer touches" not in text
    assert "©." not in text and "fastgd.datasets" in (html / "py-modindex.html").read_text()
