"""Permissions: policy documents and their evaluation, request signing, credentials."""
