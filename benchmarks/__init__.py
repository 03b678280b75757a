"""End-to-end login benchmark: flask-wechat against hand-written code and stock Authlib.

Run ``python -m benchmarks --help`` (or ``make bench``); see ``benchmarks/README.md``.
"""
