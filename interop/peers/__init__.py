"""Drivers for the independent peers: each module owns one peer and exposes ``PEER``."""
