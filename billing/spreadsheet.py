"""Cells of the CSV files people open in a spreadsheet (the usage export, the ledger export)."""

# A text cell starting with one of these is read as a formula by Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A leading apostrophe makes a spreadsheet show the text instead of evaluating it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
