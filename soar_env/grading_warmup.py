"""Math-Verify's lazy set-up, done by importing this module: only the grading forkserver
imports it (``soar_env.grading`` preloads it), so that every worker forked from there starts
warm. A fresh fork otherwise spends up to 0.26 s CPU on its first (x+1)^2 or \\sin x
(0.01-0.05 s warm).
"""

from soar_env.grading import math_verify_verdict

WARM_UP = [  # (gold, pred) pairs that reach each lazily built part of sympy and Math-Verify
    ("x^2+2x+1", "(x+1)^2"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\{1,2\\}", "[0,1)"),
    ("x=3", "\\sin(\\pi/3)"),
    ("\\frac{\\pi}{3}", "60^\\circ"),
    ("50\\%", "\\binom{n}{2}-n"),
    ("(1,2)", "\\det\\begin{pmatrix}p & q \\\\ r & s\\end{pmatrix}"),
]

for _gold, _pred in WARM_UP:
    math_verify_verdict(_gold, _pred)
