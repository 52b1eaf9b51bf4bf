"""`python -m benchmarks [--quick] [--engines ...] [--workloads ...] [--json PATH]`"""

from benchmarks.runner import main

raise SystemExit(main())
