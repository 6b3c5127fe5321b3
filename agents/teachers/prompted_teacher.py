"""A prompted-LLM teacher: any Hugging Face chat model writes problems, never trained.

The DataEnvGym-style baseline (Khan et al., 2024, arXiv 2410.06215: an LLM prompted to
write training data, no policy update): the model named by ``model`` (a local folder, or a
hub id already in the local cache) gets the env's teacher prompt as one user turn of its own
chat template, and its samples are parsed and validated exactly as the SOAR teacher's are
(``problems_from_texts``; the domain's solver answers by default on the chain domains,
``answers='teacher'`` keeps the model's own answers). It never learns, so the bench evaluates
it without training rounds, like ``base``. The difference from ``base``: ``base`` is the
env's own teacher model (the student's copy); ``prompted`` is whatever model you name.

    soar-env train --teacher prompted --set teacher.model=/models/Qwen2.5-1.5B-Instruct
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .soar_teacher import BaseTeacher, SoarTeacherConfig

SAMPLE_BATCHES = 4
"""Default rejection-sampling budget per round (calls of ``sample_batch``): a chat model that
writes well-formed problems needs one or two; one that cannot should fail fast."""


class PromptedTeacher(BaseTeacher):
    """``base`` with a model of your choice (see the module docstring).

    Args:
        config: a full ``SoarTeacherConfig`` (its ``model`` is required); or
        settings: fields changed on the env's preset (``--set teacher.model=PATH``).
    """

    name = "prompted"
    learns = False

    def setup(self, env: Any, seed: int) -> None:
        settings = {"max_sample_batches": SAMPLE_BATCHES, **self.settings}
        config = self.config or SoarTeacherConfig.for_env(env, **settings)
        if not config.model:
            raise ValueError("The prompted teacher expects a chat model: teacher.model=PATH (a local "
                             "model folder, or a hub id in the local cache)")
        self.config = replace(config, name=self.name)
        super().setup(env, seed)
