"""SQL only: Core statements returning records; takes the caller's connection, never commits.

Imports nothing above it (resolvers, schema, gateway).
"""
