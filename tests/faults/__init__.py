"""Fault injection for the test suite: a TCP proxy (proxy.py) and a record of faults."""
