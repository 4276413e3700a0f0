"""Code-related web data: a fastText classifier, domain aggregation, the scoring stage."""

from codekiln.stream.webclf.domains import aggregate, domain_of, iterate, select_domains
from codekiln.stream.webclf.model import CodeWebClassifier, TrainParams, WebClfError, evaluate

__all__ = [
    "CodeWebClassifier",
    "TrainParams",
    "WebClfError",
    "aggregate",
    "domain_of",
    "evaluate",
    "iterate",
    "select_domains",
]
