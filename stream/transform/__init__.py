"""Transformations of kept records (RefineCode: copyright-header removal)."""

from codekiln.stream.transform.comment_syntax import CommentSyntax, syntax_for
from codekiln.stream.transform.copyright import CopyrightStage, strip_licence_header

__all__ = ["CommentSyntax", "CopyrightStage", "strip_licence_header", "syntax_for"]
