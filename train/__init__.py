"""codekiln.train"""
