"""Push: ring devices that hold no socket (issue 12, API.md "Push").

``senders/`` holds one async client per provider behind the ``Sender`` protocol of
``senders/base.py``; the rest of this package decides when to push, stores the attempts with the
call, and runs the delivery worker.
"""
