import atexit
import os
import shutil
import tempfile

import pytest

# Tests never write into the user's cache: hard sets and hub files go to a temporary folder
# (subprocesses inherit it), removed when the session ends. CI may set its own.
if "SOAR_ENV_TEST_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="soar-env-test-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["SOAR_ENV_CACHE"] = _cache
else:
    os.environ["SOAR_ENV_CACHE"] = os.environ["SOAR_ENV_TEST_CACHE"]


@pytest.fixture(scope="session")
def tiny_student():
    """The shipped tiny chain model (loaded once; tests restore its weights after use)."""
    from soar_env.embedded import load_tiny_student

    return load_tiny_student()


@pytest.fixture()
def student(tiny_student):
    snapshot = tiny_student.snapshot()
    yield tiny_student
    tiny_student.restore(snapshot)


@pytest.fixture()
def domain():
    from soar_env.embedded import tiny_domain

    return tiny_domain()


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>"
    "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
)


def build_chat_llama(out):
    """A small random Llama (GQA) with a char tokenizer and a chat template, saved to ``out``."""
    from soar_env.student.scratch import build_char_llama

    return build_char_llama(out, hidden_size=32, layers=2, heads=4, kv_heads=2, chat_template=CHAT_TEMPLATE,
                            intermediate_size=64, max_positions=1024)
