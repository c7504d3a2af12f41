"""Sphinx configuration. Build: sphinx-build -W -b html docs docs/_build/html

At build time this file writes docs/_generated/: the optimizer table from the registry (fastgd.optimizers) and
the figures of the worked examples, drawn by the same functions the tests run (fastgd.examples).
"""

import inspect
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

import fastgd  # noqa: E402
from fastgd import examples  # noqa: E402
from fastgd._what_to_see import WHAT_TO_SEE  # noqa: E402
from fastgd.optimizers import OPTIMIZERS  # noqa: E402

project = "fastgd"
copyright = "the fastgd authors (BSD-3-Clause)"  # the footer reads "© Copyright ..." instead of "©. |"
version = release = fastgd.__version__
# mathml: formulas become MathML at build time (no MathJax from a CDN: the pages work offline);
# notes_section: prose after a numpydoc Parameters list goes under Notes instead of becoming fake parameters
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "mathml", "notes_section"]
html_math_renderer = "mathml"
myst_enable_extensions = ["dollarmath"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated", "benchmark-latest.md"]  # the last two are included by other pages
html_theme = "alabaster"
html_show_sphinx = False
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["fastgd.css"]
# a 960 px text column: the figures (drawn at most 900 px wide at 100 dpi) and the optimizer table show at full size
# in a 1280 px window; below 1240 px alabaster switches to its fluid layout
html_theme_options = {"page_width": "1240px", "sidebar_width": "220px", "body_max_width": "none"}
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
suppress_warnings = ["myst.header"]

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, "_generated")
os.makedirs(GENERATED, exist_ok=True)


def _optimizer_table():
    lines = ["| name (class) | update (torch.optim's algorithm) | hyperparameters and defaults | start rate |",
             "|---|---|---|---|"]
    for name, cls in OPTIMIZERS.items():
        doc = inspect.getdoc(cls).splitlines()[0].replace("|", "\\|")
        params = ", ".join(f"`{k}={v!r}`" for k, v in cls().get_params().items())
        lines.append(f"| `{name}` (`{cls.__name__}`) | {doc} | {params} | {cls.start_lr:g} |")
    return "\n".join(lines) + "\n"


with open(os.path.join(GENERATED, "optimizers.md"), "w") as f:
    f.write(_optimizer_table())

# the "What to see" paragraph of each worked example: the text `fastgd demo NAME` prints (fastgd._what_to_see)
for name, (_, text) in WHAT_TO_SEE.items():
    with open(os.path.join(GENERATED, f"what-to-see-{name}.md"), "w") as f:
        f.write(f"**What to see.** {text}\n")

if os.environ.get("FASTGD_DOCS_SKIP_FIGURES") != "1":
    for name in examples.EXAMPLES:
        examples.render(name, os.path.join(GENERATED, f"{name}.png"))
