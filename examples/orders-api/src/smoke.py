"""A stepshift test function for orders-api: invokes the candidate version directly
(never the alias) with a few API requests, and fails the hook with a reason when one
answers badly. stepshift's hooks need no callback: the answer is the verdict."""

import json

import boto3

lam = boto3.client("lambda")

REQUESTS = [
    {"rawPath": "/orders", "requestContext": {"http": {"method": "GET"}}},
    {"rawPath": "/health", "requestContext": {"http": {"method": "GET"}}},
]


def handler(event, context):
    arn = event["candidate"]["qualified_arn"]
    for request in REQUESTS:
        answer = lam.invoke(FunctionName=arn, Payload=json.dumps(request).encode())
        body = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            return {"status": "failed", "reason": f"{request['rawPath']}: {body.get('errorMessage')}"}
        if not isinstance(body, dict) or body.get("statusCode", 500) >= 500:
            return {"status": "failed", "reason": f"{request['rawPath']} answered {body}"}
    return {"status": "passed", "step": event["step"], "weight_percent": event["weight_percent"]}
