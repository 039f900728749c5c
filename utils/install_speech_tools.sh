#!/usr/bin/env bash
# Install the tools the offline recipes speak and recognise their data with, when missing:
# flite and sox (apt-get, as root) and pocketsphinx (pip, into $PYTHON or python3).
#   utils/install_speech_tools.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
. "$root/utils/log.sh"
missing=()
command -v flite > /dev/null || missing+=(flite)
command -v sox > /dev/null || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: install them (Debian: sudo apt-get install -y ${missing[*]})"
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
if ! "$python" -c "import pocketsphinx" 2> /dev/null; then
  log "installing pocketsphinx (pip)"
  "$python" -m pip install --quiet pocketsphinx
fi
