"""The account lifecycle seen from the walker: password change, sessions, deletion, export.

It sits above the shop (deletion cancels and refunds unsent orders; the export reads every
domain's part), so it is the one domain that may import the features.
"""
