# Shared by the bin/ scripts: compiling the extension.

# um_build_extension RUBY VARIANT
# Compiles ext/um as VARIANT (release: lib/, debug: tmp/debug/, sanitize:
# tmp/sanitize/) when a source is newer than the built library, and prints
# the directory that holds it.
um_build_extension() {
  um_build_ext "$1" "$2" "$UM_ROOT/ext/um" um_ext "$UM_ROOT/lib" "$UM_ROOT/tmp"
}

# uma_build_extension RUBY VARIANT
# The same for Uma's extension (uma/ext/uma): release into uma/lib/, the
# others under tmp/uma/.
uma_build_extension() {
  um_build_ext "$1" "$2" "$UM_ROOT/uma/ext/uma" uma_ext "$UM_ROOT/uma/lib" "$UM_ROOT/tmp/uma"
}

# um_build_ext RUBY VARIANT SRC_DIR NAME RELEASE_DIR TMP_DIR
um_build_ext() {
  local ruby="$1" variant="$2" src="$3" name="$4" out_dir
  local -a vars=(-u UM_DEBUG -u UM_SANITIZE)
  case "$variant" in
    release) out_dir="$5" ;;
    debug) out_dir="$6/debug"; vars+=(UM_DEBUG=1) ;;
    sanitize) out_dir="$6/sanitize"; vars+=(UM_SANITIZE=1) ;;
    *) echo "unknown build variant: $variant" >&2; return 1 ;;
  esac
  local so="$out_dir/$name.so" build_dir="$6/build/$variant"
  mkdir -p "$build_dir" "$out_dir"
  (
    # One build at a time per variant: two test runs started together would
    # otherwise compile into the same directory.
    exec 8>"$build_dir.lock"
    flock 8
    if [ ! -f "$so" ] || [ -n "$(find "$src" -newer "$so" -type f | head -1)" ]; then
      (
        cd "$build_dir"
        env "${vars[@]}" "$ruby" "$src/extconf.rb" >/dev/null
        make -s clean >/dev/null && make -s -j"$(nproc)" >/dev/null
      ) || { echo "build of the extension $name ($variant) failed" >&2; exit 1; }
      # A new inode: a process that has the old library loaded keeps it intact.
      cp "$build_dir/$name.so" "$so.tmp" && mv "$so.tmp" "$so"
    fi
  ) || return 1
  echo "$out_dir"
}
