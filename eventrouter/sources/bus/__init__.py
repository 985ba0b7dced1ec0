"""Event-bus rules as a source: ``EventRule`` and the ``EventBus`` settings (``rules``). The
buses that match events to rules are :mod:`eventrouter.bus`."""
