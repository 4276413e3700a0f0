"""codekiln.synth"""
