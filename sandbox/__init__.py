"""codekiln.sandbox"""
