"""Keep free text out of a numpydoc ``Parameters`` list.

Napoleon reads every unindented line of a ``Parameters`` section as a new ``name : type`` entry. A paragraph
written after the last parameter (``LinearRegressor`` explains its defaults there) therefore turns into
made-up parameters, and one of its lines, ``step; no penalty, ...``, becomes the Sphinx field
``:param step; no penalty:``, which Sphinx reads as "parameter ``penalty`` of type ``step; no``" and which
replaces the real ``penalty`` entry.

Before napoleon runs, this extension looks at each unindented line of the ``Parameters`` section of a
class, function or method: when the names on it are not all parameters of the signature, the free text
starts there, and a ``Notes`` heading is inserted before it, as numpydoc asks for. Docstrings that already
keep their prose in a section are left as they are.
"""

import inspect
import re

_HEADER_RULE = re.compile(r"^-{3,}\s*$")


def _section_starts(lines):
    return {i for i in range(len(lines) - 1) if lines[i].strip() and _HEADER_RULE.match(lines[i + 1])}


def _names(line):
    head = line.split(" : ", 1)[0] if " : " in line else line
    return [n.strip().lstrip("*") for n in head.split(",")]


def move_free_text_to_notes(lines, params):
    """Insert a ``Notes`` heading (in place) before the first line of the ``Parameters`` section that names
    something other than the parameters ``params``; returns the index of that line, or None."""
    heads = _section_starts(lines)
    start = next((i for i in sorted(heads) if lines[i].strip() == "Parameters"), None)
    if start is None:
        return None
    for i in range(start + 2, len(lines)):
        line = lines[i]
        if i in heads:
            return None
        if not line.strip() or line[0].isspace():
            continue
        if not all(n in params for n in _names(line)):
            if i > 0 and lines[i - 1].strip():
                lines.insert(i, "")
                i += 1
            lines[i:i] = ["Notes", "-----"]
            return i
    return None


def _process(app, what, name, obj, options, lines):
    if what not in ("class", "function", "method"):
        return
    try:
        params = set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return
    move_free_text_to_notes(lines, params)


def setup(app):
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("autodoc-process-docstring", _process, priority=400)  # napoleon's handler runs at 500
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
