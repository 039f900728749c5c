#!/usr/bin/env bash
# The test suite: installs what it needs, lints, runs every unit test.
#   utils/run_tests.sh [pytest args]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash utils/install.sh
python3 -m ruff check rescore tests bench
# syntax of the Perl job runners and the shell scripts (errors are printed and stop the run)
for f in utils/*.pl; do perl -Iutils/lib -c "$f" 2>/dev/null || perl -Iutils/lib -c "$f"; done
for f in utils/*.sh .ci/run; do bash -n "$f"; done
python3 -m pytest -q tests "$@"
