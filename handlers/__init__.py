"""The demo application `python -m eventrouter run` serves: a small shop.

    place_order (sync, typed)  ──invoke_async──>  send_receipt (retries, destinations)
                                                     │ on_success: queue "shipments" ──> ship
                                                     └ on_failure: function audit ──> out/audit/
    quote: a plain ``def`` handler (runs in a worker thread)

Every module in this package is imported; the functions register on the default router.
"""
