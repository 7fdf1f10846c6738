"""
The exceptions routilux-stdlib raises on top of those of ``routilux.exceptions``.
"""

from __future__ import annotations

from routilux.exceptions import RoutiluxError


__all__ = ["ExpressionError", "ExtractionError"]

#: How much of an expression an ExpressionError's message shows.
_SHOWN = 200


class ExpressionError(RoutiluxError, ValueError):
    """
    A condition expression is not allowed by the safe evaluator (attribute walks, dunder
    names, imports, lambdas, unknown names...) or cannot be parsed.

    It is raised when the expression is checked: when a route or filter is declared, and at
    the latest the first time the expression is evaluated. Errors raised by a valid
    expression while it runs (a missing key, a type mismatch) are not ``ExpressionError``.

    Attributes:
        expression: The rejected expression text (the message shows at most 200 characters
            of it).
        reason: Why it was rejected.
    """

    def __init__(self, expression: str, reason: str) -> None:
        shown = repr(expression)
        if len(shown) > _SHOWN:
            # The message stays one short line; the whole text is in ``expression``.
            shown = f"{shown[: _SHOWN - 3]}... ({len(expression)} characters)"
        super().__init__(f"unsafe or invalid expression {shown}: {reason}")
        #: The rejected expression text.
        self.expression = expression
        #: Why it was rejected.
        self.reason = reason


class ExtractionError(RoutiluxError, ValueError):
    """
    ResultExtractor found nothing and ``return_original_on_failure`` is off.

    Attributes:
        errors: The errors the extractors raised, as ``{"extractor", "error"}`` dicts.
    """

    def __init__(self, message: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        #: The errors the extractors raised.
        self.errors = list(errors or [])
