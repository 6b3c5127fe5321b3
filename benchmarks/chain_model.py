"""What a shipped tiny chain model learned: per-family accuracy and what it proposes.

For each family of the variant's domain (v0: on-target only; v1: on- and off-target):
greedy accuracy on short chains (1-2 steps), sampled per-step accuracy per operation (each
step judged from the model's own previous state, as the writer's noise is defined), and,
prompted as a teacher with ``Q:``, the well-formed fraction and profile of its questions.

    python benchmarks/chain_model.py --variant v1 [--samples 512]

Prints one JSON line.
"""

import argparse
import json

import torch

from soar_env import embedded
from soar_env.domains.chain import OFF_TARGET_SKILLS, SKILLS, apply_op


def per_step_accuracy(student, domain, skills, n: int, seed: int) -> dict[str, float]:
    """Sampled per-step accuracy per op on 5-step chains, given the sampled previous state."""
    problems = domain.problems(n, [5], seed=seed, skills=skills)
    texts = student.sample([domain.student_prompt(p.question) for p in problems], 1, 12, 1.0,
                           torch.Generator().manual_seed(seed)).texts
    right = {op: [0, 0] for op in skills}
    for problem, text in zip(problems, texts):
        chain = domain.parse_question(problem.question)
        states = text.strip().split(",")
        prev = chain.start
        for (op, arg), state in zip(chain.steps, states):
            if len(state) != 1 or not state.isdigit():
                break
            right[op][0] += int(state) == apply_op(prev, op, arg)
            right[op][1] += 1
            prev = int(state)
    return {op: a / max(1, b) for op, (a, b) in right.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("v0", "v1"), default="v1")
    parser.add_argument("--samples", type=int, default=512, help="chains per measure")
    args = parser.parse_args()
    domain = embedded.variant_domain(args.variant)
    student = embedded.load_tiny_student(embedded.variant_model_path(args.variant))
    families = {"on-target": SKILLS}
    if domain.off_target:
        families["off-target"] = OFF_TARGET_SKILLS
    out: dict = {"variant": args.variant, "writer_accuracy": domain.writer_accuracy}
    for i, (family, skills) in enumerate(families.items()):
        problems = domain.problems(args.samples, [1, 2], seed=i, skills=skills)
        greedy = student.greedy([domain.student_prompt(p.question) for p in problems], 8)
        out[family] = {
            "greedy_accuracy_1_2": sum(domain.grade(g, p.answer) for g, p in zip(greedy, problems))
            / len(problems),
            "sampled_step_accuracy": per_step_accuracy(student, domain, skills, args.samples,
                                                       seed=10 + i),
        }
    budget = domain.teacher_max_tokens(with_answer=False)
    generator = torch.Generator().manual_seed(0)
    texts = student.sample([domain.teacher_prompt] * args.samples, 1, budget, 1.0, generator).texts
    questions = []
    for text in texts:
        parsed = domain.parse_teacher_sample(text)
        if isinstance(parsed, str):
            continue
        try:
            domain.parse_question(parsed[0])
            questions.append(parsed[0])
        except ValueError:
            pass
    out["teacher"] = {"well_formed": len(questions) / len(texts), **domain.profile(questions)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
