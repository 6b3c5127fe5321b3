"""soar-env: SOAR ("Teaching Models to Teach Themselves", arXiv 2601.18778) as a Gymnasium env.

``import soar_env`` stays light: torch and transformers load only when a student is built.
"""

__version__ = "0.1.0"
