"""Faces that agent frameworks expect, each mapped onto the repositories."""
