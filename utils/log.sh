# shellcheck shell=bash
# log.sh: the package's log line format for shell scripts (sourced, not run).
#
#   . "$root/utils/log.sh"
#   log "Stage 3: teacher PLL: data/dev -> exp/teacher/dev"
#   warn "no lattices given: stage 1 skipped"
#   die "conf/md.yaml not found"             # logs an ERROR line and exits 1
#   show python3 -m rescore.bin.rescore ...  # prints the command as one copy-pasteable line (stdout)
#
# Lines go to stderr as "2024-05-01 12:00:00,123 (run.sh:87) INFO: message", the format of
# rescore/log.py (LOG_FORMAT: asctime, module:lineno, level), so a pipeline's shell and Python
# lines read as one log.

_log_line() {
  local level=$1
  shift
  local where
  where="$(basename "${BASH_SOURCE[2]:-$0}"):${BASH_LINENO[1]:-0}"
  printf '%s (%s) %s: %s\n' "$(date '+%Y-%m-%d %H:%M:%S,%3N')" "$where" "$level" "$*" >&2
}

log() { _log_line INFO "$@"; }
warn() { _log_line WARNING "$@"; }
die() {
  _log_line ERROR "$@"
  exit 1
}

# show ARGS...: the command as one copy-pasteable line on stdout (words quoted only when needed).
show() {
  local out="" a
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=,+@%{}~-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  printf '%s\n' "${out# }"
}
