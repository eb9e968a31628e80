"""Shadow evaluation of live traffic: sample live calls, replay them on another tier off the request
path, grade both answers blind, and turn the graded pairs into verdicts per task type (the seeds'
rule), training outcomes for the learned router, and registry changes the monitor can revert.

- ``policy``: which calls may be replayed, on which tier (pure);
- ``runtime``: the bounded queue and workers of one proxy process, the shared daily cap;
- ``grading``: checks or the blind judge;
- ``verdicts``: error rates with Wilson intervals, verdicts, savings at today's volume;
- ``learn``: retrain and recalibrate the learned router on the team's outcomes, revert;
- ``watch``: what the monitor runs on its schedule (auto-apply, revert on regression, learn);
- ``sim``: the simulated workload whose truth the offline upstream's quality model hides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings
    from .runtime import ShadowRuntime

__all__ = ["build_shadow"]


def build_shadow(settings: "Settings", upstream: Any, ledger: Any, dispatcher: Any = None) -> "ShadowRuntime":
    """The proxy's shadow sampler; [shadow] needs the ledger database (the pairs and the budget live there)."""
    from ..errors import ConfigError
    from .grading import compile_checks
    from .runtime import ShadowRuntime

    if ledger is None:
        raise ConfigError("shadow.enabled needs a ledger database (ledger.url): the pairs and the shadow budget live there")
    compile_checks(settings.raw["shadow"]["checks"])  # a bad check is refused at start-up, naming it
    return ShadowRuntime(settings, upstream, ledger.engine, store_prompts=bool(ledger.store_prompts), dispatcher=dispatcher)
