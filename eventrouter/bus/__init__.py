"""The embedded event buses: ``EventBuses`` (``buses``: PutEvents, one durable write per
matching rule; archives and replays), the rule index (``index``) and input transformers
(``transform``). The rules themselves are a source: :mod:`eventrouter.sources.bus`."""
