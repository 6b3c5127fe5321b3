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
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    ))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
