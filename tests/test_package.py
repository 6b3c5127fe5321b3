import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_import_is_light_and_registers_ids():
    code = ("import sys, soar_env, gymnasium as gym; "
            "assert 'SOAR-Tiny-v0' in gym.registry and 'SOAR-MATH-v0' in gym.registry; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_soar_env_never_imports_agents():
    for path in (ROOT / "soar_env").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] in ("agents", "soar_agents") for n in names), path


def test_agents_install_under_their_own_name():
    import soar_agents

    assert pathlib.Path(soar_agents.__file__).resolve().parent == ROOT / "agents"


def test_shipped_model_is_package_data():
    from soar_env.embedded import TINY_CHAIN_PATH

    names = {p.name for p in TINY_CHAIN_PATH.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
