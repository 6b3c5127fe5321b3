import torch


def test_tiny_model_proposes_well_formed_problems(student, domain):
    """Prompted with the teacher prompt, the shipped model writes valid questions."""
    rollout = student.sample([domain.teacher_prompt], 256, 45, 1.0, torch.Generator().manual_seed(0))
    valid, lengths, skills = 0, set(), set()
    for text in rollout.texts:
        parsed = domain.parse_teacher_sample(text)
        if isinstance(parsed, str):
            continue
        try:
            chain = domain.parse_question(parsed[0])
        except ValueError:
            continue
        valid += 1
        lengths.add(chain.length)
        skills |= {op for op, _ in chain.steps}
    assert valid / len(rollout.texts) > 0.9
    assert len(lengths) > 10 and skills == {"+", "-", "*"}  # diverse, like its corpus
