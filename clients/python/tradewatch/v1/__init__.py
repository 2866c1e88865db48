"""tradewatch.v1, generated from proto/tradewatch/v1/*.proto by clients/generate.py.

One module per proto file: ``X_pb2`` holds its messages and enums, ``X_pb2_grpc`` the
stubs of its services (``program_service_pb2_grpc.ProgramServiceStub``, ...).
"""
