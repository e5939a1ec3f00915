"""verdict: a rule-based investment recommendation engine (see README.md)."""

__version__ = "0.1.0"
