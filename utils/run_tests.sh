#!/usr/bin/env bash
# The test suite: installs what it needs, lints, runs every unit test.
#   utils/run_tests.sh [pytest args]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash utils/install.sh
python3 -m ruff check rescore tests bench
python3 -m pytest -q tests "$@"
