"""Text as SageMaker's fields take it: their lengths count UTF-16 code units, as Java does."""

from __future__ import annotations


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 code units, never inside a character."""
    # a pair cut in half decodes to nothing
    return text.encode("utf-16-le", "surrogatepass")[: 2 * limit].decode("utf-16-le", "ignore")
