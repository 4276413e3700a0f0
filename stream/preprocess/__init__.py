"""RefineCode preprocessing: language identification (GitHub Linguist's table) and drops."""

from codekiln.stream.preprocess.language import EXCLUDED_LANGUAGES, LanguageStage
from codekiln.stream.preprocess.languages import Detection, Language, LanguageTable, default_table

__all__ = [
    "EXCLUDED_LANGUAGES",
    "Detection",
    "Language",
    "LanguageStage",
    "LanguageTable",
    "default_table",
]
