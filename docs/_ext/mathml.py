"""Render the documentation's mathematics to MathML at build time, so formulas show without JavaScript and
without the network (a reader offline, or on an air-gapped cluster, sees them as well as anyone).

Sphinx's default, MathJax, is a script fetched from a CDN when the page opens. Here each ``$...$`` and
``$$...$$`` (MyST's dollarmath, or the ``math`` role and directive) is converted once, by the pure-Python
``latex2mathml`` package, into a ``<math>`` element that the browser lays out itself (MathML Core: Chromium
109+, Firefox, Safari). The TeX source stays in the ``alttext`` attribute, for copying and screen readers.

Enable with ``extensions = [..., "mathml"]`` (this folder on ``sys.path``); it sets
``html_math_renderer = "mathml"``. An expression latex2mathml cannot convert fails the build, naming it.
"""

import re

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.math import get_node_equation_number


def _convert(tex, display):
    from latex2mathml.converter import convert

    try:
        mathml = convert(tex, display=display)
    except Exception as exc:  # latex2mathml raises its own exception types for unknown commands
        raise ExtensionError(f"mathml: cannot convert the formula {tex!r} to MathML: {exc}") from exc
    unknown = re.findall(r">(\\[A-Za-z]+)<", mathml)  # latex2mathml passes commands it lacks through as text
    if unknown:
        raise ExtensionError(f"mathml: the formula {tex!r} uses {', '.join(unknown)}, which latex2mathml cannot "
                             "convert to MathML: write it with other commands")
    # TeX's |x| and ‖x‖ are ordinary (no space around the bars); a MathML "|" between two terms is an infix
    # operator and gets operator spacing ("| x |"), so give the bars none
    mathml = re.sub(r'<mo( stretchy="false")?>(&#x0007C;|&#x02016;)</mo>', r'<mo\1 lspace="0" rspace="0">\2</mo>',
                    mathml)
    # keep the TeX for copy and paste and for screen readers
    alt = tex.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return mathml.replace("<math ", f'<math alttext="{alt}" ', 1)


def visit_math(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate"))
    self.body.append(_convert(node.astext(), "inline") + "</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node):
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node["number"]:
        number = get_node_equation_number(self, node)
        self.body.append(f'<span class="eqno">({number})')
        self.add_permalink_ref(node, "Link to this equation")
        self.body.append("</span>")
    for part in (p for p in node.astext().split("\n\n") if p.strip()):
        self.body.append(_convert(part.strip(), "block"))
    self.body.append("</div>\n")
    raise nodes.SkipNode


def _use_mathml(app, config):
    if config.html_math_renderer is None:
        config.html_math_renderer = "mathml"


def setup(app):
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_displaymath, None))
    app.connect("config-inited", _use_mathml)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
