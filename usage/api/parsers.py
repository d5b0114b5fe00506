"""The API's JSON parser: DRF's, with a bound on nesting.

A body nested 1,000 deep (2 KB) made json.load raise RecursionError, which DRF does not catch (an
HTML 500). Our bodies are at most 4 levels deep (run -> nodes -> node -> tools -> tool), so anything
deeper than MAX_DEPTH is refused as a 400 invalid_request, whether or not Python could parse it."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 20


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:  # iterative: a recursive walk would fail on the very input it guards against
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
        if _depth_exceeds(data, MAX_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        return data
