"""`python -m vkhost_batch`: the same as the vkhost-batch-plugin command."""

from .main import main

raise SystemExit(main())
