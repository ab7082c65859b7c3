"""Mail delivery (core: knows no domain).

A domain writes a mail with `outbox.enqueue(session, ...)` in the transaction of the change
that causes it; a job sends it (`tasks.py`), over SMTP (`transport.py`), or in development
without SMTP settings to the log and a folder of .eml files.
"""
