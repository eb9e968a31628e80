"""``tierwise eval``: run representative inputs through every tier, grade them blind, recommend a registry.

Modules: ``graders`` (inputs and checks), ``judge`` (blind LLM judge), ``runner`` (calls, spend cap,
resume, batches), ``report`` (statistics and the seeds' rule), ``apply`` (registry changes),
``human`` (blind sheets), ``charts`` (inline SVG), ``stats``.
"""
