# Shared by bin/setup: which ruby3.4 source package version to build.

# um_upstream_version DEB_VERSION: the Ruby version of a Debian version
# (1:3.4.11-1~exp1 -> 3.4.11).
um_upstream_version() {
  local v="${1#*:}"
  echo "${v%-*}"
}

# um_ruby_source_candidates PINNED [AVAILABLE...]: the Debian versions to
# try, in order: the pinned one, then the 3.4.x versions the archive lists,
# newest first (each once).
um_ruby_source_candidates() {
  local pinned="$1"
  shift
  echo "$pinned"
  printf '%s\n' "$@" | grep -E '^([0-9]+:)?3\.4\.[0-9]+' | grep -vxF "$pinned" | sort -V -r -u || true
}

# um_choose_ruby_source FETCH PINNED [AVAILABLE...]: runs the command FETCH
# with each candidate Debian version (see above) until one succeeds, and
# prints that version. Logs on stderr when it is not the pinned one. Fails
# when no download worked.
um_choose_ruby_source() {
  local fetch="$1" pinned="$2" version
  shift 2
  while read -r version; do
    [ -n "$version" ] || continue
    if "$fetch" "$version"; then
      if [ "$version" != "$pinned" ]; then
        echo "setup: ruby3.4 $pinned is not in the archive any more; building $version instead" >&2
      fi
      echo "$version"
      return 0
    fi
    echo "setup: could not download ruby3.4 $version" >&2
  done < <(um_ruby_source_candidates "$pinned" "$@")
  echo "setup: no ruby3.4 3.4.x source package could be downloaded" >&2
  return 1
}
