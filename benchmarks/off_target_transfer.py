"""SOAR-Tiny-v1: how RL on one family moves each operation's one-step accuracy.

The hard set is long (18-20 steps), so its pass@1 is roughly a product of per-step
accuracies and hides how much RL on off-target chains moves the on-target operations. This
measures that directly: exact one-step pass@1 per operation (600 one-step chains) for the
base v1 model and after 10 (64 chains) and 120 (256 chains) RLOO steps of the tiny inner
loop on off-target or on good stepping stones (medium chains of each family).

    python benchmarks/off_target_transfer.py

Prints one line per run and, last, one JSON line.
"""

import json

from soar_env import embedded
from soar_env.config import tiny
from soar_env.domains.chain import OFF_TARGET_SKILLS, SKILLS
from soar_env.rl import RLOOTrainer

SETS = {"off-target": embedded.off_target_stones, "good": embedded.good_stones}


def main() -> None:
    domain = embedded.variant_domain("v1")
    student = embedded.load_tiny_student(embedded.variant_model_path("v1"))
    base = student.snapshot()
    probe = domain.problems(600, [1], seed=7, skills=SKILLS + OFF_TARGET_SKILLS)

    def per_op() -> dict[str, float]:
        p = student.exact_pass_at_1([domain.student_prompt(q.question) for q in probe],
                                    [q.answer for q in probe])
        return {op: round(float(p[[q.metadata["skills"] == op for q in probe]].mean()), 4)
                for op in domain.writer_accuracy}

    out = {"base": per_op()}
    for kind, stones in SETS.items():
        for steps, n in ((10, 64), (120, 256)):
            student.restore(base)
            trainer = RLOOTrainer(student, domain.grade_batch, domain.student_prompt, tiny().rl,
                                  seed=0)
            trainer.train(stones(n, seed=1), steps)
            out[f"{kind}_{steps}"] = per_op()
            print(kind, steps, out[f"{kind}_{steps}"], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
