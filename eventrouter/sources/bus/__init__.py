"""The embedded event buses: ``EventRule`` / ``EventBus`` (``rules``), the rule index, input
transformers and ``EventBuses`` (``buses``: PutEvents, one durable write per matching rule)."""
