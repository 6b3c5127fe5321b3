"""Many RLOO runs of one small student, trained in lockstep as one stacked model.

A grounded round is ``g x r`` independent inner runs from the same baseline; an evaluation
is several fresh students. On the tiny CPU models each run alone leaves the cores mostly
waiting on per-call overhead, so ``LockstepRLOO`` trains S runs at once on a
``StackedLlama``: one batched sampling call, one grading call and one batched update per
step for all of them. Each run keeps what makes it independent:

- its own question order (``random.Random(seed)``) and its own sampling stream (a
  ``torch.Generator(seed)`` that draws the random number of each of its rows and steps);
- its own loss normalisation, gradient clipping and AdamW state (``StackedAdamW``);
- its own fate: a run whose loss, weights or logits stop being finite is stopped and
  reported (the others go on), and a run that ends early (an evaluation's stopping rule)
  leaves the stack.

The algorithm is ``soar_env.rl.RLOOTrainer``'s: leave-one-out advantages per question,
groups whose samples all scored the same skipped, ``-A * log p(sequence)`` averaged over the
live sequences, a k3 KL term to a reference when ``kl_coef > 0``. The update is trimmed to
the live rows' real width and split into passes of at most ``max_pass_tokens`` tokens,
bucketed by length (gradient accumulation: the sum equals one pass). Sampling decodes at
most ``max_decode_rows`` rows at a time (whole questions): both bound the step's memory,
which is otherwise set by the stack's size (docs/scale.md, "Memory").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from soar_env import threads
from soar_env.config import RLOOConfig
from soar_env.problems import Problem
from soar_env.rl import rloo_advantages
from soar_env.stacked_adamw import StackedAdamW
from soar_env.student.hf import HFStudent
from soar_env.student.stacked import StackedLlama, shape_of, take_groups
from soar_env.student.stacked_decode import concat_rollouts, sample

Weights = dict[str, Tensor]

MAX_PASS_TOKENS = 1 << 12
MAX_DECODE_ROWS = 1 << 10
"""Defaults of ``LockstepRLOO``'s memory bounds. Ten stacked fresh students on SOAR-Tiny-v1
(an evaluation) peaked at 3.5 GB with one pass of 65,536 tokens and every row decoded at
once. Since 0.5.0 (fused attention) passes of 4,096 tokens and slices of 1,024 rows peak at
0.77 GB against 1.02 GB at 8,192 and 2,048, in the same time within one repeat's noise
(``benchmarks/lockstep_memory.py``, docs/scale.md). A worker of the CLI's 2 stacks 2 runs of
a grounded round (2 x 64 questions x 8 samples = 1,024 rows): one call."""


class QuestionOrder:
    """The questions of each step: a shuffled pass over the problems, reshuffled when used up
    (``RLOOTrainer``'s order); a new problem list restarts it."""

    def __init__(self, seed: int, per_step: int):
        self.rng, self.per_step = random.Random(seed), per_step
        self._order: list[int] = []
        self._source: Sequence[Problem] | None = None

    def next(self, problems: Sequence[Problem]) -> list[Problem]:
        if problems is not self._source:
            self._source, self._order = problems, []
        batch = []
        while len(batch) < min(self.per_step, len(problems)):
            if not self._order:
                self._order = list(range(len(problems)))
                self.rng.shuffle(self._order)
            batch.append(problems[self._order.pop()])
        return batch


class TokenCache:
    """Token ids of prompts and answers, encoded once per distinct text: the same questions
    come back at every step, and the tokenizer cost more than the small model's prefill."""

    def __init__(self, student: HFStudent, prompt_fn: Callable[[str], str]):
        self.student, self.prompt_fn = student, prompt_fn
        self._prompts: dict[str, list[int]] = {}
        self._answers: dict[str, list[int]] = {}

    def prompts(self, questions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Left-padded prompt ids and mask [N, P] (each prompt encoded alone)."""
        for q in set(questions) - self._prompts.keys():
            ids, mask = self.student.encode_prompts([self.prompt_fn(q)])
            self._prompts[q] = ids[0][mask[0].bool()].tolist()
        rows = [self._prompts[q] for q in questions]
        width = max(len(r) for r in rows)
        pad = self.student.pad_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        return ids, mask

    def answers(self, answers: Sequence[str]) -> Tensor:
        """Answer tokens and the end token [N, A], -1 after."""
        for a in set(answers) - self._answers.keys():
            ids, mask = self.student.encode_completions([a])
            self._answers[a] = ids[0][mask[0].bool()].tolist()
        rows = [self._answers[a] for a in answers]
        width = max(len(r) for r in rows)
        return torch.tensor([r + [-1] * (width - len(r)) for r in rows], dtype=torch.long)


@dataclass
class Completions:
    """One step's samples: their prompts [S, G, P] (ids and mask), tokens [S, G, n, W],
    lengths [S, G, n] and texts per student."""

    prompt_ids: Tensor
    prompt_mask: Tensor
    tokens: Tensor
    lengths: Tensor
    texts: list[list[str | None]]
    cut: Tensor | None = None


class LockstepRLOO:
    """S RLOO runs of ``student``'s architecture, from ``starts`` (one weights dict each).

    Args:
        student: an ``HFStudent`` whose model ``stackable`` accepts (its tokenizer and
            prompts are used; its own weights are not touched).
        reward_fn: scores completions against their problems (a domain's ``reward_batch``).
        prompt_fn: question -> student prompt.
        rl: the runs' RLOO settings.
        starts: the weights each run starts from.
        seeds: each run's seed (question order and sampling).
        reference: weights of the KL reference (needed when ``rl.kl_coef > 0``).
        max_pass_tokens: the most completion tokens of one update pass.
        max_decode_rows: the most rows (questions x samples x stacked runs) decoded at once;
            a step with more decodes its questions in slices (at least one question each).
        exact_answers: the domain's completions are right (reward 1, else 0) exactly when
            they are the answer's tokens and the end token (``Domain.exact_answers``): a
            group none of whose samples can still be right stops sampling (exact: its
            advantages are 0 whatever it would have written; ``stacked_decode.sample``).
    """

    def __init__(
        self,
        student: HFStudent,
        reward_fn: Callable,
        prompt_fn: Callable[[str], str],
        rl: RLOOConfig,
        starts: Sequence[Weights],
        seeds: Sequence[int],
        reference: Weights | None = None,
        max_pass_tokens: int = MAX_PASS_TOKENS,
        exact_answers: bool = False,
        max_decode_rows: int = MAX_DECODE_ROWS,
    ):
        if len(starts) != len(seeds) or not starts:
            raise ValueError(f"Expects one seed per start, actual {len(seeds)} for {len(starts)}")
        if rl.kl_coef > 0 and reference is None:
            raise ValueError("kl_coef > 0 expects reference weights")
        self.student, self.reward_fn, self.prompt_fn, self.rl = student, reward_fn, prompt_fn, rl
        self.shape = shape_of(student.model)
        self.model = StackedLlama.from_states(self.shape, list(starts))
        self.optimizer = StackedAdamW(self.model.params, rl.learning_rate, rl.weight_decay, rl.max_grad_norm)
        self.reference: dict[str, Tensor] | None = None
        if reference is not None and rl.kl_coef > 0:
            one = StackedLlama.from_states(self.shape, [reference])
            self.reference = {k: v.detach() for k, v in one.params.items()}
        self.runs = list(range(len(starts)))  # stack slot -> run id
        self.orders = [QuestionOrder(seed, rl.questions_per_step) for seed in seeds]
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.failed: dict[int, str] = {}
        self.max_pass_tokens = max_pass_tokens
        self.max_decode_rows = max_decode_rows
        self.bucket_ratio = 0.6
        self.exact_answers = exact_answers
        self.checked_cut = False  # set once a step's cut rows were graded and found wrong
        self.tokens = TokenCache(student, prompt_fn)

    # ---- which runs are in the stack -------------------------------------------------------
    def drop(self, runs: Sequence[int]) -> None:
        """Take ``runs`` out of the stack (finished or failed)."""
        keep = torch.tensor([i for i, r in enumerate(self.runs) if r not in set(runs)], dtype=torch.long)
        self.runs = [self.runs[i] for i in keep.tolist()]
        if not self.runs:
            return
        for name, p in self.model.params.items():
            self.model.params[name] = p.detach()[keep].clone().requires_grad_(True)
        self.optimizer.params = self.model.params
        self.optimizer.select(keep)

    def weights(self, run: int) -> Weights:
        """A run's current weights under transformers' names (CPU copies)."""
        return self.model.state(self.runs.index(run))

    # ---- prompts and samples ---------------------------------------------------------------
    def _answers(self, batches: list[list[Problem]]) -> Tensor | None:
        """Each question's answer tokens and end token [S, G, A] (-1 after), when exact."""
        if not self.exact_answers:
            return None
        ids = self.tokens.answers([p.answer for batch in batches for p in batch])
        return ids.view(len(batches), -1, ids.shape[-1])

    def _encode(self, batches: list[list[Problem]]) -> tuple[Tensor, Tensor]:
        """Left-padded prompt ids and mask [S, G, P] (every run has G questions)."""
        ids, mask = self.tokens.prompts([p.question for batch in batches for p in batch])
        return ids.view(len(batches), -1, ids.shape[-1]), mask.view(len(batches), -1, ids.shape[-1])

    def complete(
        self,
        batches: list[list[Problem]],
        samples: int,
        max_new_tokens: int,
        temperature: float,
        generators: list[torch.Generator] | None,
    ) -> Completions:
        """``samples`` completions of each question, one batch of questions per stacked run;
        ``generators`` None decodes greedily. Rows of cut groups (exact-answer domains: none
        of their samples can be right) get no text unless the domain's claim is unchecked."""
        threads.adapt()  # one thread while another process holds a core (soar_env.threads)
        ids, mask = self._encode(batches)
        S, G = ids.shape[:2]
        uniforms = None
        if generators is not None:
            uniforms = torch.stack(
                [torch.rand((G, samples, max_new_tokens), generator=g) for g in generators]
            )
        eos, pad = self.student.eos_id, self.student.pad_id
        answers = self._answers(batches)
        per_call = max(1, self.max_decode_rows // (S * samples))  # questions decoded at once
        parts = [
            sample(
                self.model,
                ids[:, at : at + per_call],
                mask[:, at : at + per_call],
                samples,
                max_new_tokens,
                None if uniforms is None else uniforms[:, at : at + per_call],
                eos,
                pad,
                temperature,
                answers=None if answers is None else answers[:, at : at + per_call],
            )
            for at in range(0, G, per_call)
        ]
        out = parts[0] if len(parts) == 1 else concat_rollouts(parts, pad)
        for slot in (~out.finite).nonzero().flatten().tolist():
            self.failed.setdefault(
                self.runs[slot], "sampling failed: the logits are not finite (diverged weights)"
            )
        tokens, lengths = out.tokens, out.lengths
        wanted = torch.ones(S * G * samples, dtype=torch.bool)
        if out.cut is not None and self.checked_cut:  # cut rows are wrong: no text needed
            wanted = ~out.cut[..., None].expand(-1, -1, samples).flatten()
        rows = tokens.view(-1, tokens.shape[-1])[wanted].tolist()
        ends = lengths.flatten()[wanted].tolist()
        kept = [row[: end - (row[end - 1] == eos if end else 0)] for row, end in zip(rows, ends)]
        decoded = iter(self.student.tokenizer.batch_decode(kept, skip_special_tokens=True))
        texts = [next(decoded) if w else None for w in wanted.tolist()]
        per = G * samples
        texts_per_run = [texts[s * per : (s + 1) * per] for s in range(S)]
        return Completions(ids, mask, tokens, lengths, texts_per_run, out.cut)

    # ---- one RLOO step ---------------------------------------------------------------------
    def step(self, datasets: Sequence[Sequence[Problem]]) -> list[dict[str, float]]:
        """One RLOO update of every run in the stack, run i on ``datasets[i]`` (in the stack's
        order, ``self.runs``). Returns each run's statistics (``RLOOTrainer.step``'s keys)."""
        rl, n = self.rl, self.rl.samples_per_question
        batches = [self.orders[run].next(data) for run, data in zip(self.runs, datasets)]
        G = max(len(b) for b in batches)
        # A run with fewer questions (a dataset with invalid problems) is padded with its
        # first question; padded groups are neither graded nor trained on.
        real = torch.tensor([[g < len(b) for g in range(G)] for b in batches])
        batches = [b + [b[0]] * (G - len(b)) for b in batches]
        gens = [self.generators[run] for run in self.runs]
        done = self.complete(batches, n, rl.max_new_tokens, rl.temperature, gens)
        S = len(batches)
        rewards = torch.zeros(S, G, n)  # rows of cut groups have no text: wrong, reward 0
        graded = [
            (s, g) for s in range(S) for g in range(G) if real[s, g] and done.texts[s][g * n] is not None
        ]
        scores = self.reward_fn(
            [t for s, g in graded for t in done.texts[s][g * n : (g + 1) * n]],
            [batches[s][g] for s, g in graded for _ in range(n)],
        )
        for i, (s, g) in enumerate(graded):
            rewards[s, g] = torch.tensor(scores[i * n : (i + 1) * n], dtype=torch.float32)
        if done.cut is not None and not self.checked_cut:  # the first step grades cut rows too
            if bool((rewards.amax(-1) > 0)[done.cut].any()):
                raise ValueError(
                    "The domain declares exact_answers, but its reward_batch paid a completion "
                    "that is not its answer's tokens: set exact_answers=False on the domain"
                )
            self.checked_cut = True
        advantages = rloo_advantages(rewards.view(S * G, n)).view(S, G, n)
        live = (rewards.amax(-1) > rewards.amin(-1)) & real  # [S, G]
        rows = real.sum(-1) * n
        stats = [
            {
                "reward": float(rewards[s].sum() / rows[s]),
                "live_groups": int(live[s].sum()),
                "sampled_tokens": int((done.lengths[s] * real[s, :, None]).sum()),
                "updated": 0.0,
            }
            for s in range(S)
        ]
        ok = torch.tensor([run not in self.failed for run in self.runs])
        updated = live.any(-1) & ok
        if bool(updated.any()):
            losses = self._update(done, advantages, live & updated[:, None])
            for s in range(S):
                if updated[s] and not torch.isfinite(losses[s]):
                    self.failed[self.runs[s]] = (
                        f"RLOO loss is {losses[s].item()} (check learning_rate and kl_coef)"
                    )
                    updated[s] = False
            self.optimizer.step(updated)
            finite = torch.stack(
                [p.detach().flatten(1).isfinite().all(1) for p in self.model.params.values()]
            )
            for s in (~finite.all(0) & updated).nonzero().flatten().tolist():
                self.failed[self.runs[s]] = (
                    "RLOO update produced non-finite weights (check learning_rate and kl_coef)"
                )
            for s in range(S):
                if updated[s]:
                    stats[s]["updated"] = 1.0
        return stats

    def _update(self, done: Completions, advantages: Tensor, live: Tensor) -> Tensor:
        """Backward of the RLOO loss of the live groups (gradients left in the params);
        returns each run's loss [S]. Groups are sorted by length and cut into passes."""
        S, G, n = advantages.shape
        count = live.sum(-1)  # live groups per run
        rows = (count * n).clamp(min=1).float()  # the loss is a mean over each run's live rows
        group_len = done.lengths.amax(-1).masked_fill(~live, 0)  # [S, G]
        # Per run: live groups first, longest first; slot j of every run goes in one pass.
        order = torch.sort(group_len, dim=1, descending=True, stable=True).indices
        L = int(count.max())
        order, lens = order[:, :L], group_len.gather(1, order[:, :L])
        total = torch.zeros(S)
        start = 0
        widths = lens.amax(0)  # slot j's width in a pass: the longest of the runs' j-th groups
        while start < L:
            width = int(widths[start])
            end = min(L, start + max(1, self.max_pass_tokens // (max(1, n * width) * S)))
            # A new pass (length bucket) where the groups get much shorter: less padding.
            shorter = (widths[start + 1 : end] <= self.bucket_ratio * width).nonzero()
            if len(shorter):
                end = start + 1 + int(shorter[0])
            take = order[:, start:end]
            total = total + self._pass(done, advantages, live, take, width, rows)
            start = end
        return total

    def _pass(self, done: Completions, advantages, live, take: Tensor, width: int, rows: Tensor):
        ids, mask = done.prompt_ids, done.prompt_mask
        tokens = take_groups(done.tokens[..., :width], take)  # [S, g, n, width]
        lengths = take_groups(done.lengths, take)
        token_mask = (torch.arange(width) < lengths[..., None]).float()
        adv = take_groups(advantages, take) * take_groups(live, take)[..., None]
        logp = self.model.completion_logprobs(take_groups(ids, take), take_groups(mask, take), tokens)
        seq = (logp * token_mask).sum(-1)  # [S, g, n]
        loss = -(adv * seq).flatten(1).sum(1) / rows
        if self.reference is not None:
            with torch.no_grad():  # the reference's one copy, broadcast over the stack
                S = tokens.shape[0]
                ref_model = StackedLlama(
                    self.shape, {k: v.expand(S, *v.shape[1:]) for k, v in self.reference.items()}
                )
                ref = ref_model.completion_logprobs(take_groups(ids, take), take_groups(mask, take), tokens)
            delta = (ref - logp) * token_mask
            kl = ((torch.exp(delta) - delta - 1) * token_mask).sum(-1)
            kl = (kl * take_groups(live, take)[..., None]).flatten(1).sum(1) / rows
            loss = loss + self.rl.kl_coef * kl
        loss.sum().backward()
        return loss.detach()

    # ---- measurements ----------------------------------------------------------------------
    @torch.no_grad()
    def exact_accuracy(self, problems: Sequence[Problem]) -> list[float]:
        """Each stacked run's mean exact pass@1 (exp log p(answer + end token)) on ``problems``."""
        return [float(v) for v in self.exact_pass_at_1(problems).mean(-1)]

    @torch.no_grad()
    def exact_pass_at_1(self, problems: Sequence[Problem]) -> Tensor:
        """[S, len(problems)] exact pass@1 of every stacked run."""
        S = len(self.runs)
        ids, mask = self._encode([list(problems)] * S)
        answers, answer_mask = self.student.encode_completions([p.answer for p in problems])
        tokens = answers.cpu()[None, :, None, :].expand(S, -1, 1, -1)
        logp = self.model.completion_logprobs(ids, mask, tokens)[:, :, 0]
        return (logp * answer_mask.cpu()).sum(-1).exp()

    def graded_accuracy(
        self,
        problems: Sequence[Problem],
        samples: int,
        max_new_tokens: int,
        seeds: Sequence[int] | None,
        grade: Callable,
    ) -> tuple[list[float], list[int]]:
        """Each run's mean grade of ``samples`` samples at temperature 1 (``seeds`` None: one
        greedy answer), and the tokens each run sampled."""
        gens = None if seeds is None else [torch.Generator().manual_seed(s) for s in seeds]
        samples = 1 if seeds is None else samples
        done = self.complete([list(problems)] * len(self.runs), samples, max_new_tokens, 1.0, gens)
        expanded = [p for p in problems for _ in range(samples)] * len(self.runs)
        texts = [t for per_run in done.texts for t in per_run]
        kept = [i for i, t in enumerate(texts) if t is not None]  # the others were cut: wrong
        scores = [0.0] * len(texts)
        for i, score in zip(kept, grade([texts[i] for i in kept], [expanded[i] for i in kept])):
            scores[i] = score
        per = len(problems) * samples
        return (
            [sum(scores[s * per : (s + 1) * per]) / per for s in range(len(self.runs))],
            [int(n) for n in done.lengths.flatten(1).sum(1)],
        )
