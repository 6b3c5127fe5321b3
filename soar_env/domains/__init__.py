"""Domains: problem source, prompt format and grader (and, embedded, a pretraining corpus)."""
