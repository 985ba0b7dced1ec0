"""An unmodified AWS Lambda Python handler: it knows nothing of eventrouter.

The tests run this same file inline, in a process environment, and under AWS's own runtime
interface client (``python -m awslambdaric lambda_function.lambda_handler``).
"""

import json
import os


def lambda_handler(event, context):
    remaining = context.get_remaining_time_in_millis()
    if "Records" in event:  # SQS, with partial batch responses
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if json.loads(record["body"]).get("retry")
        ]
        return {"batchItemFailures": failures}
    if event.get("version") == "2.0":  # API Gateway HTTP API / function URL
        body = {
            "method": event["requestContext"]["http"]["method"],
            "path": event["rawPath"],
            "query": event.get("queryStringParameters"),
            "remaining": remaining,
        }
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-handled-by": "lambda_handler"},
            "body": json.dumps(body),
        }
    if event.get("fail"):
        raise ValueError(f"refused: {event['fail']}")
    return {
        "echo": event,
        "pid": os.getpid(),
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "remaining": remaining,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }
