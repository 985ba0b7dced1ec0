"""The demo application `python -m eventrouter run` serves: a small shop.

    POST /orders: place_order (sync, typed)  ──invoke_async──>  send_receipt (retries, destinations)
                                                     │ on_success: queue "shipments" ──> ship
                                                     └ on_failure: function audit ──> out/audit/
    quote: a plain ``def`` handler (runs in a worker thread)
    GET /orders/{order_id}: order_status, a Lambda-style handler (API Gateway event in and out)
    place_order also puts order.placed on the "orders" event bus: count_order's rule gets it;
    hourly_report runs on a schedule (cron, Paris time) and reports what the hour sold.
    Every function is also reachable through Lambda's Invoke API.

Every module in this package is imported; the functions register on the default router.
"""
