import pytest


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
