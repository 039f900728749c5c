#!/usr/bin/env bash
# The test suite: installs what it needs, lints, runs every unit test (no fixed timeouts), then the
# recipe tier (pytest marker "recipe"): mini_en end to end with debug configs, books_en's data
# regeneration, csj end to end on a hand-made fixture (~10 minutes on 2 cores).
#   utils/run_tests.sh [pytest args]          # pytest args apply to the unit tests
#   RESCORE_RECIPE_TEST=0 utils/run_tests.sh  # unit tests only
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash utils/install.sh
python3 -m ruff check rescore tests bench egs
# syntax of the Perl job runners and the shell scripts (errors are printed and stop the run)
for f in utils/*.pl; do perl -Iutils/lib -c "$f" 2>/dev/null || perl -Iutils/lib -c "$f"; done
for f in utils/*.sh .ci/run; do bash -n "$f"; done
python3 -m pytest -q -m "not recipe" tests "$@"
if [ "${RESCORE_RECIPE_TEST:-1}" != 0 ]; then
  python3 -m pytest -q -s -m recipe tests/egs/test_mini_en_recipe.py tests/egs/test_books_en_recipe.py \
    tests/egs/test_csj.py
fi
