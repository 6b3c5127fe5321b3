"""Domains: problem source, prompt format and grader (and, embedded, a pretraining corpus).

``register_domain(name, factory)`` names a domain for ``gym.make(id, domain=name)``. The
built-in domains register here, by the path of their factory: naming one imports none.
"""

from soar_env.domains.base import (
    Domain,
    DomainFactory,
    ValidityReferences,
    make_domain,
    register_domain,
    registered_domains,
)

__all__ = [
    "Domain", "DomainFactory", "ValidityReferences", "make_domain", "register_domain", "registered_domains",
]

register_domain("chain", "soar_env.domains.chain_variants:domain_from_config")
register_domain("math", "soar_env.domains.math:domain_from_config")
register_domain("reasoning-gym", "soar_env.domains.reasoning_gym:domain_from_config")
