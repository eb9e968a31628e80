"""``tierwise eval``: run representative inputs through every tier, grade them blind, recommend a registry.

Modules: ``graders`` (inputs and checks), ``judge`` (blind LLM judge), ``runner`` (calls, spend cap,
resume, batches), ``apply`` (registry changes), ``human`` (blind sheets), ``charts`` (inline SVG),
``stats``. The report (statistics and the seeds' rule) is :mod:`tierwise.reports.evaluation`.
"""
