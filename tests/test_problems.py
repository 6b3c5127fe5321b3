"""Teacher text cannot crash or hang a run: the raw parser, the caps, and one rule per domain."""

ARABIC_THREE, ARABIC_SIX = "\u0663", "\u0666"


def test_chain_takes_only_ascii_digits(domain):
    q = "5+3" + ".." * 19
    assert domain.validate(q, "8") is None
    assert "start digit" in domain.validate(ARABIC_THREE + q[1:], "6")
    assert "slot 0" in domain.validate("5+" + ARABIC_THREE + q[3:], "8")
    assert "answer" in domain.validate(q, "\u0668")  # Arabic-indic eight
    assert "question" in domain.validate("5+\u00b3" + q[3:], "8")  # superscript three
