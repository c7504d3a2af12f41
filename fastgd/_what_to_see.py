"""What each worked example shows: one text for the documentation page and for ``fastgd demo NAME``.

``WHAT_TO_SEE`` maps an example's name (``fastgd.examples.EXAMPLES``) to its title and the paragraph a
reader should look for in its figure, in Markdown with TeX between dollar signs. The docs include it as is
(``docs/conf.py`` writes it to ``docs/_generated/what-to-see-NAME.md``); ``plain`` turns it into plain
Unicode text for the terminal.
"""

import re
import textwrap

WHAT_TO_SEE = {
    "step-sizes-1d": (
        "Step size: too small, right, too large",
        r"""From $x_0 = 8.7$:
α = 0.01 converges monotonically but is too small (factor 0.98: 114 steps for each digit, and after 30 steps
$x$ has not even halved); α = 0.2 converges monotonically (factor 0.6, 5 steps per digit); α = 0.9
oscillates — every step overshoots the minimum, so the sign flips — and converges (factor −0.8); α = 1.05
oscillates and diverges (factor −1.1). On the log scale (right) each run is a straight line whose slope is
$\log|1 - 2\alpha|$. Any α between 0 and 1 converges; α = 0.5 lands on the minimum in one step."""),
    "step-sizes-2d": (
        "Two dimensions and elongated contours",
        r"""Top: on the round bowl $x_1^2 + x_2^2$ (λ = 2 in every direction) α = 0.1 walks straight in
(factor 0.8) and α = 0.9 jumps across the minimum every step (factor −0.8) yet converges just as fast.
Bottom: on the elongated $0.5x_1^2 + 2x_2^2 + x_1x_2$ (Hessian eigenvalues 0.70 and 4.30) no single step suits
both directions. At α = 0.2 the steep direction (factor 0.14) is gone after a few steps and the path bends into
the valley, then creeps along it at 0.86 per step: the ratio of the eigenvalues, not the step, sets the pace.
At α = 0.45 the steep factor is −0.94 and the path zig-zags across the valley."""),
    "optimizers": (
        "Momentum and adaptive methods",
        r"""Gradient descent's best rate is the one theory predicts,
$2/(\lambda_{\mathrm{min}} + \lambda_{\mathrm{max}}) = 0.4$, shrinking the error by $(\kappa - 1)/(\kappa + 1) = 0.72$ per step (κ = 6.2). Tuned momentum (β = 0.3)
and Adagrad need about half its steps, Nesterov fewer too. The dotted curve is momentum with torch's default
β = 0.9 at the same rate: it rings — circles around the minimum with f rising and falling — because on a
quadratic a heavy ball with β = 0.9 loses only a factor $\sqrt{\beta} \approx 0.95$ of its error per step,
however the rate is chosen. Adam rings for the same reason (its first moment is a momentum with
β₁ = 0.9). RMSprop, the same normalization without momentum, does not ring but creeps: dividing by
$\sqrt{v}$, a running average of past squared gradients, makes the step follow the gradient's sign more than
its size. So the adaptive methods need several times as many steps here: they pay off on noisy and badly
scaled problems, not on a smooth, well-scaled quadratic."""),
    "batch-sizes": (
        "Batch, stochastic and mini-batch",
        r"""After the first epoch the stochastic and mini-batch runs, with 20,000 and 625 updates per
epoch against one, are hundreds of times closer to the optimum. Then they stop improving: each step follows a
noisy gradient, and with a constant rate the model keeps jittering around the optimum at a **noise floor**
proportional to the rate — halving the mini-batch rate (0.02 → 0.01) halves the floor — while full batch
converges steadily and passes them by the sixth epoch. Shrinking the rate removes the floor: the mini-batch
run whose rate is multiplied by 0.7 after every epoch keeps its head start and ends more than a thousand times
below the constant-rate floor. Averaging the iterates (Polyak–Ruppert averaging) is the other classical
remedy: the jitter around the optimum averages out."""),
    "stationary-points": (
        "Saddle points and local minima",
        r"""Left: on $x_1^2 - x_2^2$ (Hessian eigenvalues 2 and −2) gradient descent started exactly on
the $x_1$-axis converges to the saddle at 0, where the gradient vanishes; started 1e-3 off the axis it escapes
along $x_2$. Right: on the six-hump camel function 7 starts, each with gradient descent (solid) and Adam
(dashed), end in 7 different stationary points: six minima (★), the two global ones at f = −1.0316, and the
saddle at (0, 0) (✕), where both optimizers started and which neither can leave because its gradient is zero.
The table lists each end point's Hessian eigenvalues and the verdict they give."""),
}

_TEX = [  # the TeX the paragraphs use, as Unicode
    (r"\\lambda_\{\\mathrm\{(\w+)\}\}", r"λ_\1"), (r"\\sqrt\{([^}]*)\}", r"√\1"), (r"\\kappa", "κ"),
    (r"\\alpha", "α"), (r"\\beta", "β"), (r"\\lambda", "λ"), (r"\\approx", "≈"), (r"\\mapsto", "↦"),
    (r"\\log", "log"), (r"\\,", " "), (r"\\ ", " "),
]
_SUB = str.maketrans("0123456789k", "₀₁₂₃₄₅₆₇₈₉ₖ")
_SUP = str.maketrans("0123456789k", "⁰¹²³⁴⁵⁶⁷⁸⁹ᵏ")


def _math(tex):
    for pattern, repl in _TEX:
        tex = re.sub(pattern, repl, tex)
    tex = re.sub(r"_\{?([0-9k])\}?", lambda m: m.group(1).translate(_SUB), tex)
    tex = re.sub(r"\^\{?([0-9k])\}?", lambda m: m.group(1).translate(_SUP), tex)
    return tex.replace("-", "−")


def plain(text, width=100):
    """The Markdown paragraph as wrapped plain text: formulas in Unicode, no markup."""
    text = re.sub(r"\$([^$]+)\$", lambda m: _math(m.group(1)), text)
    text = text.replace("**", "").replace("`", "")
    return textwrap.fill(" ".join(text.split()), width)
