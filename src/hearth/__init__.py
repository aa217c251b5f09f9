"""Hearth: run open LLMs on your own computer."""

__version__ = "0.1.0"
__all__ = ["__version__"]
