"""Gymnasium wrappers around ``SoarEnv``."""

from soar_env.wrappers.parametric import ParametricTeacherWrapper

__all__ = ["ParametricTeacherWrapper"]
