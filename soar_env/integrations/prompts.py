"""What a chat LLM teacher is asked, and a dataset as the raw text the env reads.

The env's observation prompt is the domain's teacher prompt: on the math domains an
instruction for one problem in the paper's format, on the chain domains the tiny teacher's
completion prefix ``Q:``, which tells a chat model nothing. ``chat_teacher_prompt`` asks for a
whole dataset (``n`` problems) in the format the env parses,
``<question>...</question><answer>\\boxed{...}</answer>``, and on the chain domains adds the
grammar, with one example the domain's own generator writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soar_env.problems import Problem

OPERATIONS = {"+": "adds", "-": "subtracts", "*": "multiplies by", "<": "takes the minimum with",
              ">": "takes the maximum with", "^": "takes the bitwise xor with"}
"""How the chain grammar's operations act on the state (``soar_env.domains.chain.apply_op``)."""


def dataset_text(problems: Sequence[Problem | tuple[str, str]]) -> str:
    """Problems as raw teacher text, one ``<question>/<answer>\\boxed{}`` pair a line."""
    pairs = [(p.question, p.answer) if isinstance(p, Problem) else p for p in problems]
    return "".join(f"<question>{q}</question><answer>\\boxed{{{a}}}</answer>\n" for q, a in pairs)


def chat_teacher_prompt(domain: Any, dataset_size: int) -> str:
    """The env's teacher prompt as an instruction for a chat model to write one dataset."""
    ask = (f"Write {dataset_size} different practice problems for a student model, one after another, "
           "each exactly as <question>the question</question><answer>\\boxed{the answer}</answer>.")
    arguments = getattr(domain, "arguments", None)
    if domain.generator is None or not isinstance(arguments, dict):
        return f"{domain.teacher_prompt}\n\n{ask}"
    example = domain.generator.problems(1, range(3, 4), seed=0)[0]
    ops = "; ".join(f"'{op}' {OPERATIONS.get(op, 'applies')} one of {', '.join(map(str, args))}"
                    for op, args in arguments.items())
    return (
        f"{ask}\nA question is a start digit followed by exactly {domain.generator.max_len} two-character "
        f"slots: an operation and its argument ({ops}; arithmetic is mod 10), then '..' for every unused "
        "slot. The answer is every state after each operation, as digits separated by commas. Example: "
        f"<question>{example.question}</question><answer>\\boxed{{{example.answer}}}</answer>"
    )
