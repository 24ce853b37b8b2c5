"""Databases an agent records to."""
