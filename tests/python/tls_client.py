"""Drives a TLS daemon with grpcio, a gRPC stack Gatehouse did not write.

Usage: tls_client.py HOST:PORT CA CERT KEY TOKEN

Prints one JSON object per check; messages go as raw protobuf bytes (an
empty request is valid for both calls), so no generated code is needed.
"""

import json
import sys

import grpc

target, ca_path, cert_path, key_path, token = sys.argv[1:6]


def read(path):
    with open(path, "rb") as f:
        return f.read()


ca, cert, key = read(ca_path), read(cert_path), read(key_path)


def call(credentials, method, metadata=()):
    with grpc.secure_channel(target, credentials) as channel:
        rpc = channel.unary_unary(
            method,
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            reply = rpc(b"", metadata=metadata, timeout=10)
            return {"code": "OK", "reply": reply.decode("utf-8", "replace")}
        except grpc.RpcError as e:
            return {"code": e.code().name, "details": e.details()}


mutual = grpc.ssl_channel_credentials(
    root_certificates=ca, private_key=key, certificate_chain=cert
)
no_client_cert = grpc.ssl_channel_credentials(root_certificates=ca)
auth = (("authorization", "Bearer " + token),)

checks = {
    "health": call(mutual, "/grpc.health.v1.Health/Check"),
    "environments": call(
        mutual, "/gatehouse.v1.EnvironmentService/ListEnvironments", auth
    ),
    "environments_without_token": call(
        mutual, "/gatehouse.v1.EnvironmentService/ListEnvironments"
    ),
    "without_client_certificate": call(
        no_client_cert, "/grpc.health.v1.Health/Check"
    ),
}
for name, result in checks.items():
    print(json.dumps({"check": name, **result}), flush=True)
