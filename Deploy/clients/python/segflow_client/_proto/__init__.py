# Generated protobuf code for Protocols/segflow.proto (see the client's README and
# Deploy/clients/python/generate.sh). Do not edit segflow_pb2.py / segflow_pb2.pyi by hand.
