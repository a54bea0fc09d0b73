"""orders-api: the function the README's worked example releases with stepshift.

Every request writes one CloudWatch Embedded Metric Format (EMF) line to stdout:
Requests = 1, and Http5xx = 1 when the answer is a 5xx (0 otherwise), with the
dimensions Service=orders and Version=the version that ran. Lambda sends stdout to
CloudWatch Logs, and CloudWatch Logs turns the line into metrics: no library, no
PutMetricData call, no extra permission. The `http-5xx` rule in deploy.json judges the
candidate version on them.

A handled 500 is a successful invocation to Lambda, so AWS/Lambda Errors never counts
it. HANDLED_500_PERCENT (template.yaml) makes a version answer that share of its
/orders requests with one. /health always answers 200, so the test before traffic
passes and the metric rule has to catch it.
"""

import json
import os
import random
import time

SERVICE = "orders"
# The published version that runs ("42"), also when invoked through an alias;
# "$LATEST" only when the function is invoked unqualified.
VERSION = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
HANDLED_500_PERCENT = float(os.environ.get("HANDLED_500_PERCENT", "0"))


def handler(event, context):
    status, body = route(event.get("rawPath", "/"))
    emit_request_metrics(status)
    return {"statusCode": status, "body": json.dumps(body)}


def route(path):
    if path != "/health" and random.random() * 100 < HANDLED_500_PERCENT:
        return 500, {"error": "internal error", "version": VERSION}
    return 200, {"orders": [], "version": VERSION}


def emit_request_metrics(status):
    """Print one EMF line. Http5xx is written on every request, 0 when all went well,
    so the metric has data for a healthy version too."""
    print(json.dumps({
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": "orders",
                "Dimensions": [["Service", "Version"]],
                "Metrics": [{"Name": "Http5xx", "Unit": "Count"}, {"Name": "Requests", "Unit": "Count"}],
            }],
        },
        "Service": SERVICE,
        "Version": VERSION,
        "Http5xx": 1 if status >= 500 else 0,
        "Requests": 1,
    }, separators=(",", ":")))
