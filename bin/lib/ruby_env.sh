# Shared by the bin/ scripts: where the project's Ruby lives and how to find it.
UM_RUBY_VERSION=3.4.5
UM_RUBY_DEB_VERSION=3.4.5-1~exp1
UM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/uringmachine"
UM_RUBY_PREFIX="$UM_CACHE/ruby-$UM_RUBY_VERSION"

# um_ruby_prefix VERSION: where bin/setup installs Ruby VERSION (3.4.x).
um_ruby_prefix() {
  echo "$UM_CACHE/ruby-$1"
}

# Prints the path of a Ruby >= 3.4: the one on PATH if new enough, else the
# one bin/setup built into the cache (the pinned version, else the newest
# 3.4.x built when the pinned one had left the archive). Fails when there
# is none.
um_find_ruby() {
  local candidate
  local -a cached=()
  mapfile -t cached < <(ls -d "$UM_CACHE"/ruby-3.4.* 2>/dev/null | sort -V -r)
  for candidate in "$(command -v ruby 2>/dev/null || true)" "$UM_RUBY_PREFIX/bin/ruby" "${cached[@]/%//bin/ruby}"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -e 'exit(Gem::Version.new(RUBY_VERSION) >= Gem::Version.new("3.4") ? 0 : 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
