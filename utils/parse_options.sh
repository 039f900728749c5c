# shellcheck shell=bash
# parse_options.sh: turn a script's variables into command-line options (docs/formats.md §3.5).
# Sourced, not run:
#
#   nj=4                  # defaults first
#   use_gpu=false
#   help_message="usage: $0 [--nj N] [--use-gpu true|false] <setdir> <outdir>"
#   . "$root/utils/parse_options.sh"
#   [ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
#
# Rules:
#   --foo-bar VALUE  sets foo_bar=VALUE ('-' and '_' are the same in the name); foo_bar must already
#                    be defined (set, possibly empty), otherwise: "invalid option --foo-bar", exit 1.
#   booleans         when the current value is true or false, VALUE must be true or false.
#   --name=VALUE     is rejected (write --name VALUE).
#   --config FILE    every --config given among the options is sourced (in order) before any other
#                    option is applied, so options on the command line win over the file.
#   --help, -h       prints $help_message (or a note that there is none) to stdout and exits 0.
#   --               ends the options and is removed.
#   pass-through     a wrapper that hands other options on to another script defines the array
#                    passthrough_args=() before sourcing: an unknown --name VALUE is then appended
#                    to it, as a pair and in order, instead of being an error.
# Parsing stops at the first argument that does not start with '--' (or at --); the positional
# arguments remain in "$@". Errors exit the calling script with status 1.

_po_die() {
  echo "$0: $*" >&2
  exit 1
}

# Pass 1: source the --config files, without consuming anything.
_po_args=("$@")
_po_i=0
while [ "$_po_i" -lt "${#_po_args[@]}" ]; do
  _po_a=${_po_args[$_po_i]}
  case "$_po_a" in
    --) break ;;
    --help | -h) break ;;
    --config)
      [ $((_po_i + 1)) -lt "${#_po_args[@]}" ] || _po_die "option --config needs a value"
      _po_f=${_po_args[$((_po_i + 1))]}
      [ -f "$_po_f" ] || _po_die "config file $_po_f (from --config) not found"
      # shellcheck disable=SC1090
      . "$_po_f"
      _po_i=$((_po_i + 2))
      ;;
    --*) _po_i=$((_po_i + 2)) ;;
    *) break ;;
  esac
done

# Pass 2: every other option.
while [ $# -gt 0 ]; do
  case "$1" in
    --)
      shift
      break
      ;;
    --help | -h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        echo "$0: no help message (define help_message before sourcing parse_options.sh)"
      fi
      exit 0
      ;;
    --*=*)
      _po_die "invalid option $1: write '${1%%=*} ${1#*=}' (--name=value is not accepted)"
      ;;
    --config)
      shift 2
      ;;
    --*)
      _po_name=${1#--}
      _po_name=${_po_name//-/_}
      [[ $_po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || _po_die "invalid option $1"
      if [[ ! -v $_po_name || $_po_name == passthrough_args ]]; then
        [[ $(declare -p passthrough_args 2>/dev/null) == "declare -a"* ]] || _po_die "invalid option $1"
        [ $# -ge 2 ] || _po_die "option $1 needs a value"
        passthrough_args+=("$1" "$2")
        shift 2
        continue
      fi
      [ $# -ge 2 ] || _po_die "option $1 needs a value"
      _po_old=${!_po_name}
      if [ "$_po_old" = true ] || [ "$_po_old" = false ]; then
        [ "$2" = true ] || [ "$2" = false ] || _po_die "option $1 takes true or false, got '$2'"
      fi
      printf -v "$_po_name" '%s' "$2"
      shift 2
      ;;
    *)
      break
      ;;
  esac
done
unset _po_args _po_i _po_a _po_f _po_name _po_old
unset -f _po_die
true
