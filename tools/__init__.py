"""The tools a person runs: ``fixgw`` (:mod:`tools.cli`) and each of its commands.

Session code lives in gateway/, feeds/, roles/ and store/; nothing there imports from here.
"""
