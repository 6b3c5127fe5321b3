"""One SOAR inner run, ours vs TRL: same RLOO work on the shipped tiny model, timed side by side.

Both sides train the tiny chain model from the same base weights on ``good_stones(64)`` for
``--steps`` RLOO updates: 8 questions x 32 completions per step, temperature 1.0, at most 44
new tokens (stop at ``<eos>``), exact-match reward, AdamW lr 1e-4 (constant), grad clip 1.0,
no KL (beta 0 on both), one optimizer update per generation batch. We time the ``train()`` call
of each (trainer construction is reported apart as setup) and record the mean training reward
of every step. Learning is compared twice: the mean training reward of the last 5 steps, and
the gain in exact expected pass@1 on the 64 training problems after the run (computed from
log-probs, no sampling noise: by far the tighter check). Repeats interleave the two sides,
alternating which goes first, so both share the background noise of the machine.

Threads: on a busy 2-core box torch's default of 2 threads oversubscribes the cores and both
sides slow down ~10x (OpenMP waits); ``--threads 1`` gives stable timings there.

Known differences (none changes the expected gradient direction):
- Sampling: ours is a KV-cached loop of our own drawing from a seeded ``torch.Generator``; TRL
  calls ``model.generate`` with the global RNG. Question order comes from each side's own
  shuffler, so the two see the same 64 problems in a different order.
- Loss scale: both use the sequence-level REINFORCE loss ``-A * log p(sequence)`` with the plain
  leave-one-out advantage (TRL: ``normalize_advantages=False``; with ``num_iterations=1`` its
  PPO ratio is exactly 1, so the clip is inactive). TRL averages over all 256 completions; ours
  skips groups whose rewards are all equal (zero advantage) and averages over the live ones, so
  our gradient is larger by 256/live before clipping; AdamW largely cancels a scale.
- Extra TRL work ours does not do: a no-grad forward for ``old_logps``, per-token entropies
  and metric gathering. Ours skips the update compute of dead groups.
- KL: ours adds a k3 per-token penalty to the loss, TRL a k1 penalty to the reward; they are
  different objectives, so both run with the KL off.
- Optimizer: ours ``torch.optim.AdamW``, TRL the Trainer's ``adamw_torch_fused``; same maths.
"""

import argparse
import json
import logging
import os
import statistics as st
import tempfile
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset, disable_progress_bars  # noqa: E402
from transformers import PrinterCallback, ProgressCallback, TrainerCallback  # noqa: E402
from trl import RLOOConfig as TRLConfig  # noqa: E402
from trl import RLOOTrainer as TRLTrainer  # noqa: E402

from soar_env import embedded  # noqa: E402
from soar_env.rl import RLOOConfig, RLOOTrainer  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
disable_progress_bars()
logging.getLogger("trl").setLevel(logging.ERROR)

QUESTIONS, SAMPLES, LR, MAX_NEW = 8, 32, 1e-4, 44
DOMAIN = embedded.tiny_domain()


def pass1(student, ds):
    """Exact expected pass@1 on the 64 training problems (no sampling noise), after a run."""
    return float(student.exact_pass_at_1(ds["prompt"], ds["answer"]).mean())


def run_ours(student, base, problems, steps, seed):
    student.restore(base)
    t0 = time.perf_counter()
    cfg = RLOOConfig(questions_per_step=QUESTIONS, samples_per_question=SAMPLES, learning_rate=LR,
                     kl_coef=0.0, max_grad_norm=1.0, temperature=1.0, max_new_tokens=MAX_NEW)
    trainer = RLOOTrainer(student, DOMAIN.grade_batch, DOMAIN.student_prompt, cfg, seed=seed)
    t1, c1 = time.perf_counter(), time.process_time()
    stats = trainer.train(problems, steps)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"setup_s": t1 - t0, "run_s": t2 - t1, "cpu_s": c2 - c1,
            "step_s": [s["seconds"] for s in stats], "reward": [s["reward"] for s in stats]}


def reward_func(completions, answer, **kwargs):
    """TRL-style reward: exact match of the whole trace against the `answer` column."""
    return [DOMAIN.grade(c, a) for c, a in zip(completions, answer, strict=True)]


class Recorder(TrainerCallback):
    """Per-step wall time (generation + update) and the logged mean training reward."""

    def __init__(self):
        self.step_s, self.reward, self._t = [], [], 0.0

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.step_s.append(time.perf_counter() - self._t)

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "reward" in logs:
            self.reward.append(logs["reward"])


def run_trl(student, base, dataset, steps, seed, out_dir):
    student.restore(base)
    t0 = time.perf_counter()
    args = TRLConfig(
        output_dir=out_dir, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        learning_rate=LR, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0,
        per_device_train_batch_size=QUESTIONS * SAMPLES, gradient_accumulation_steps=1,
        steps_per_generation=1, num_generations=SAMPLES, num_iterations=1, max_steps=steps,
        max_completion_length=MAX_NEW, temperature=1.0, top_p=1.0, top_k=0, beta=0.0,
        normalize_advantages=False, mask_truncated_completions=False, seed=seed, data_seed=seed,
        logging_steps=1, report_to="none", save_strategy="no", eval_strategy="no",
        disable_tqdm=True, log_completions=False, log_level="error", dataloader_num_workers=0,
    )
    rec = Recorder()
    trainer = TRLTrainer(model=student.model, reward_funcs=reward_func, args=args,
                         train_dataset=dataset, processing_class=student.tokenizer, callbacks=[rec])
    for cb in (PrinterCallback, ProgressCallback):  # they print every log line to stdout
        trainer.remove_callback(cb)
    t1, c1 = time.perf_counter(), time.process_time()
    trainer.train()
    t2, c2 = time.perf_counter(), time.process_time()
    student.model.eval()
    return {"setup_s": t1 - t0, "run_s": t2 - t1, "cpu_s": c2 - c1, "step_s": rec.step_s,
            "reward": rec.reward}


def mean_se(xs):
    m = st.mean(xs)
    return m, (st.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="inner runs per side (seeds 0..)")
    ap.add_argument("--steps", type=int, default=10, help="RLOO steps per inner run")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed 1-step warm-ups")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: torch's default; 1 avoids oversubscription)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    # Two copies of the same weights, so TRL's Trainer cannot touch the model ours trains.
    ours_s, trl_s = embedded.load_tiny_student(), embedded.load_tiny_student()
    base = ours_s.snapshot()
    tmp = tempfile.mkdtemp(prefix="inner_loop_")

    def data(seed):
        problems = embedded.good_stones(64, seed=seed)
        ds = Dataset.from_dict({"prompt": [DOMAIN.student_prompt(p.question) for p in problems],
                                "answer": [p.answer for p in problems]})
        return problems, ds

    if not a.no_warmup:  # lazy imports and first-call allocations stay out of the timings
        problems, ds = data(999)
        run_ours(ours_s, base, problems, 1, 999)
        run_trl(trl_s, base, ds, 1, 999, tmp)
    runs = {"ours": [], "trl": []}
    for r in range(a.repeats):
        problems, ds = data(r)
        order = ["ours", "trl"] if r % 2 == 0 else ["trl", "ours"]
        ours_s.restore(base)
        base_pass1 = pass1(ours_s, ds)
        for name in order:
            torch.manual_seed(r)
            student = ours_s if name == "ours" else trl_s
            res = (run_ours(ours_s, base, problems, a.steps, r) if name == "ours"
                   else run_trl(trl_s, base, ds, a.steps, r, tmp))
            res["pass1_gain"] = pass1(student, ds) - base_pass1
            runs[name].append(res)
            print(f"repeat {r} {name:4s}: {res['run_s']:7.2f}s  rewards "
                  + " ".join(f"{x:.3f}" for x in res["reward"]), flush=True)

    last = max(1, min(5, a.steps))
    summary = {"repeats": a.repeats, "steps": a.steps, "questions": QUESTIONS, "samples": SAMPLES,
               "lr": LR, "max_new_tokens": MAX_NEW, "torch_threads": torch.get_num_threads()}
    for name, rs in runs.items():
        m_last, se_last = mean_se([st.mean(x["reward"][-last:]) for x in rs])
        m_gain, se_gain = mean_se([x["pass1_gain"] for x in rs])
        summary[name] = {
            "run_s": [x["run_s"] for x in rs], "mean_run_s": st.mean(x["run_s"] for x in rs),
            "min_run_s": min(x["run_s"] for x in rs), "mean_cpu_s": st.mean(x["cpu_s"] for x in rs),
            "mean_setup_s": st.mean(x["setup_s"] for x in rs),
            "mean_step_s": st.mean(s for x in rs for s in x["step_s"]),
            "reward_per_step": [st.mean(x["reward"][i] for x in rs) for i in range(a.steps)],
            "reward_curves": [x["reward"] for x in rs],
            f"reward_last{last}_mean": m_last, f"reward_last{last}_se": se_last,
            "pass1_gain_mean": m_gain, "pass1_gain_se": se_gain,
        }
    o, t = summary["ours"], summary["trl"]
    summary["speedup_trl_over_ours"] = t["mean_run_s"] / o["mean_run_s"]
    summary["speedup_per_step"] = t["mean_step_s"] / o["mean_step_s"]
    # On a shared machine the fastest run is the least disturbed one.
    summary["speedup_min_run"] = t["min_run_s"] / o["min_run_s"]
    summary["speedup_cpu"] = t["mean_cpu_s"] / o["mean_cpu_s"]
    summary["speedup_paired"] = [b["run_s"] / c["run_s"]
                                 for c, b in zip(runs["ours"], runs["trl"], strict=True)]
    summary["speedup_with_setup"] = ((t["mean_run_s"] + t["mean_setup_s"])
                                     / (o["mean_run_s"] + o["mean_setup_s"]))
    diff = o[f"reward_last{last}_mean"] - t[f"reward_last{last}_mean"]
    se = (o[f"reward_last{last}_se"] ** 2 + t[f"reward_last{last}_se"] ** 2) ** 0.5
    g_diff = o["pass1_gain_mean"] - t["pass1_gain_mean"]
    g_se = (o["pass1_gain_se"] ** 2 + t["pass1_gain_se"] ** 2) ** 0.5
    summary.update(reward_diff_last=diff, reward_diff_se=se, pass1_gain_diff=g_diff,
                   pass1_gain_diff_se=g_se)
    summary["learning_equal_within_2se"] = (
        bool(abs(diff) <= 2 * se and abs(g_diff) <= 2 * g_se) if se == se else None)

    print(f"\n{'':18s}{'ours':>10s}{'TRL':>10s}")
    for label, key in [("setup s", "mean_setup_s"), ("inner run s", "mean_run_s"),
                       ("fastest run s", "min_run_s"), ("CPU s per run", "mean_cpu_s"),
                       ("per step s", "mean_step_s")]:
        print(f"{label:18s}{o[key]:10.3f}{t[key]:10.3f}")
    for i in range(a.steps):
        o_r, t_r = o["reward_per_step"][i], t["reward_per_step"][i]
        print(f"reward step {i + 1:<6d}{o_r:10.3f}{t_r:10.3f}")
    for name, s in (("ours", o), ("TRL", t)):
        print(f"{name}: reward over last {last} steps {s[f'reward_last{last}_mean']:.3f} "
              f"+- {s[f'reward_last{last}_se']:.3f} (SE over {a.repeats} runs); exact pass@1 "
              f"gain on the 64 problems {s['pass1_gain_mean']:+.4f} +- {s['pass1_gain_se']:.4f}")
    print(f"speed ratio TRL/ours: inner run {summary['speedup_trl_over_ours']:.2f}x, per step "
          f"{summary['speedup_per_step']:.2f}x, with setup {summary['speedup_with_setup']:.2f}x, "
          f"fastest run {summary['speedup_min_run']:.2f}x, CPU time {summary['speedup_cpu']:.2f}x, "
          "paired " + " ".join(f"{x:.2f}x" for x in summary["speedup_paired"]))
    print(f"ours-TRL: reward {diff:+.3f} +- {se:.3f}, pass@1 gain {g_diff:+.4f} +- {g_se:.4f}; "
          f"equal within 2 SE = {summary['learning_equal_within_2se']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
