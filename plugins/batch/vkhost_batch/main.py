"""The vkhost-batch-plugin command: flags, the work directory, serving.

Started by vkhost (launch mode) or with --listen (connect mode); the SDK's
flags (--listen, --tls-*, --log-level) apply. On exit every job's processes
are stopped and a temporary work directory is removed (provider.shutdown).
"""

from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from vkhost_sdk import add_serve_flags, configure_logging, serve_with_args

from .accounting import AccountingLog
from .provider import BatchProvider


def parse_flags(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vkhost-batch-plugin",
        description="vkhost provider plugin that runs each pod as a batch job: pods queue for "
                    "a fixed number of slots and run as local processes, with job accounting.")
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1,
                        help="jobs (pods) that run at once; the rest wait in the queue as "
                             "Pending/Queued (default: the number of CPUs)")
    parser.add_argument("--work-dir", default="",
                        help="where pod directories and container logs go (default: a new "
                             "temporary directory, removed on exit)")
    parser.add_argument("--accounting-file", default="",
                        help="append one JSON line per finished job to this file "
                             "(default: only log it)")
    parser.add_argument("--max-pods", type=int, default=110,
                        help="the node's pod capacity advertised to Kubernetes (default 110)")
    add_serve_flags(parser)
    args = parser.parse_args(argv)
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the plugin; returns the exit status (0 after a clean shutdown)."""
    args = parse_flags(argv)
    configure_logging(args.log_level)
    provider = BatchProvider(args.slots, args.work_dir or None,
                             AccountingLog(args.accounting_file), max_pods=args.max_pods)
    try:
        return serve_with_args(provider, args)
    finally:
        provider.shutdown()
