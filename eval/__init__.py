"""codekiln.eval"""
