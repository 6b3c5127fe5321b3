"""Diagnostics of what a teacher proposes: diversity, well-formedness, domain profile.

The paper's findings make these the first things to look at: intrinsic-reward teachers
collapse in diversity, and well-posed questions matter more than correct answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from soar_env.problems import Problem


def distinct_fraction(questions: Sequence[str]) -> float:
    """Distinct questions / questions (1.0: no repeats; 0.0 for none)."""
    return len(set(questions)) / len(questions) if questions else 0.0


def _ngrams(text: str, n: int) -> Counter:
    text = f" {text} "
    return Counter(text[i : i + n] for i in range(max(1, len(text) - n + 1)))


def vendi_score(texts: Sequence[str], ngram: int = 3) -> float:
    """Vendi score (Friedman & Dieng, 2023): the effective number of distinct texts.

    ``exp`` of the entropy of the eigenvalues of ``K / N``, with ``K`` the cosine
    similarity of character ``ngram`` count vectors (1 for identical texts, 0 for texts
    sharing no n-gram). N identical texts score 1; N unrelated ones score N. The paper
    reports ~32-35 for 128 base/grounded-teacher questions and ~10.8 for an intrinsic one
    (with a learned embedding; ours is a cheap n-gram kernel, so compare within soar-env).
    """
    if not texts:
        return 0.0
    grams = [_ngrams(t, ngram) for t in texts]
    vocab = {g: i for i, g in enumerate(sorted({g for c in grams for g in c}))}
    x = np.zeros((len(texts), len(vocab)))
    for row, counts in enumerate(grams):
        for g, c in counts.items():
            x[row, vocab[g]] = c
    x /= np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    eig = np.linalg.eigvalsh(x @ x.T / len(texts)).clip(min=0.0)
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


def self_bleu(texts: Sequence[str], max_texts: int = 64, seed: int = 0) -> float:
    """Self-BLEU (Zhu et al., 2018), 0-100: mean BLEU of each text against all the others.

    Word-level sacreBLEU (its 13a tokenizer). High means repetitive. At most ``max_texts``
    texts (a seeded subsample) keep it cheap.
    """
    from sacrebleu.metrics import BLEU

    texts = list(texts)
    if len(texts) < 2:
        return 0.0
    if len(texts) > max_texts:
        rng = np.random.default_rng(seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), max_texts, replace=False))]
    bleu = BLEU(effective_order=True)
    return float(
        np.mean([bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)])
    )


def proposal_stats(domain: Any, problems: Sequence[Problem], samples: int | None = None) -> dict[str, float]:
    """Per-round diagnostics of a teacher's valid proposals.

    Args:
        domain: the env's domain; its solver (answer checks) and profiler (word view for
            diversity, histograms such as chain lengths and skills) when it declares them.
        problems: the valid problems the teacher proposed in a round.
        samples: teacher samples drawn to get them (malformed included), for the
            well-formedness rate; None leaves the rate out.
    """
    questions = [p.question for p in problems]
    # Diversity is measured on the domain's word view of a question when it has one (the chain
    # domain spaces out its operations and drops the fixed-width padding).
    profiler, solver = domain.profiler, domain.solver
    words = [profiler.diversity_text(q) for q in questions] if profiler is not None else questions
    stats = {
        "proposals": float(len(problems)),
        "distinct_fraction": distinct_fraction(questions),
        "vendi": vendi_score(words),
        "self_bleu": self_bleu(words),
    }
    if samples:
        stats["well_formed"] = len(problems) / samples
    if problems and solver is not None:
        correct = sum(solver.is_correct(p.question, p.answer) for p in problems)
        stats["answers_correct"] = correct / len(problems)
    if profiler is not None:
        stats.update(profiler.profile(questions))
    return stats
