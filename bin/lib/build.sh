# Shared by the bin/ scripts: compiling the extension.

# um_build_extension RUBY VARIANT
# Compiles ext/um as VARIANT (release: lib/, debug: tmp/debug/, sanitize:
# tmp/sanitize/) when a source is newer than the built library, and prints
# the directory that holds it.
um_build_extension() {
  local ruby="$1" variant="$2" out_dir
  local -a vars=(-u UM_DEBUG -u UM_SANITIZE)
  case "$variant" in
    release) out_dir="$UM_ROOT/lib" ;;
    debug) out_dir="$UM_ROOT/tmp/debug"; vars+=(UM_DEBUG=1) ;;
    sanitize) out_dir="$UM_ROOT/tmp/sanitize"; vars+=(UM_SANITIZE=1) ;;
    *) echo "unknown build variant: $variant" >&2; return 1 ;;
  esac
  local so="$out_dir/um_ext.so" build_dir="$UM_ROOT/tmp/build/$variant"
  mkdir -p "$build_dir" "$out_dir"
  (
    # One build at a time per variant: two test runs started together would
    # otherwise compile into the same directory.
    exec 8>"$build_dir.lock"
    flock 8
    if [ ! -f "$so" ] || [ -n "$(find "$UM_ROOT/ext/um" -newer "$so" -type f | head -1)" ]; then
      (
        cd "$build_dir"
        env "${vars[@]}" "$ruby" "$UM_ROOT/ext/um/extconf.rb" >/dev/null
        make -s clean >/dev/null && make -s -j"$(nproc)" >/dev/null
      ) || { echo "build of the extension ($variant) failed" >&2; exit 1; }
      # A new inode: a process that has the old library loaded keeps it intact.
      cp "$build_dir/um_ext.so" "$so.tmp" && mv "$so.tmp" "$so"
    fi
  ) || return 1
  echo "$out_dir"
}
