"""vkhost-batch-plugin: a vkhost provider that runs pods as batch jobs.

Pods queue for a fixed number of slots, run as local processes (init
containers in order, app containers side by side), honour restartPolicy, and
leave job accounting records. See README.md for operators; provider.py is the
entry to the code.
"""
