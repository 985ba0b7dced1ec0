"""The demo application `python -m eventrouter run` serves: a small shop.

    POST /orders: place_order (sync, typed)  ──invoke_async──>  send_receipt (retries, destinations)
                                                     │ on_success: queue "shipments" ──> ship
                                                     └ on_failure: function audit ──> out/audit/
    quote: a plain ``def`` handler (runs in a worker thread)
    GET /orders/{order_id}: order_status, a Lambda-style handler (API Gateway event in and out)
    Every function is also reachable through Lambda's Invoke API.

Every module in this package is imported; the functions register on the default router.
"""
