"""Reproducible training commands for the studio's models (``python -m training <command> ...``)."""
