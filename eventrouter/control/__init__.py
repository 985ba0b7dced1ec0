"""Lambda's control plane on a running router: what an operator may look at and change at run
time (``http/control_api.py`` serves it), kept in the state dir and applied again on start.

- ``overrides.py``: what was changed, as stored in ``<state dir>/control.json``
- ``plane.py``: ``Control``, applying changes to functions (concurrency, configuration,
  event-invoke configs, resource policies)
- ``mappings.py``: ``Mappings``, the event source mappings: the pull sources' policies,
  started, stopped and changed
- ``destinations.py``: a destination from its ARN (event-invoke configs name them so)
"""
