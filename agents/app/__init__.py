"""The application around the teachers (``soar_agents.app``).

``cli`` (the one ``soar-env`` command), ``runs`` (run folders: train, evaluate), ``loop``
(the training loop, ``train_teacher``), ``bench`` (teachers x seeds, a leaderboard),
``report`` (tables and plots), ``logger`` (CSV and TensorBoard logs), ``checkpoints``
(what a run folder holds, read back without unpickling) and ``runlock`` (one writer per run
folder).
"""
