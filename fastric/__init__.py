"""fastric: a fast, drop-in AWS Lambda Runtime Interface Client for Python."""

__version__ = "0.1.0"
