"""Raters: the IQS scorer (CaR) and the LLM rater (AlpaGasus) behind one :class:`Rater` protocol.

Heavy dependencies (torch for IQS, the openai client for the LLM rater) are imported inside the modules
that need them, so importing this package stays cheap for the studio and the CLI.
"""

from curation.raters.base import Rater, RatingResult

__all__ = ["Rater", "RatingResult"]
