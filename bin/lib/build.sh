# Shared by the bin/ scripts: compiling the extension.

# Compiles ext/um into DIR (default: lib/, the normal build) when a source is
# newer than the built library. Extra environment (UM_DEBUG, UM_SANITIZE) is
# passed to extconf.rb.
um_build_extension() {
  local ruby="$1" out_dir="$2"
  local so="$out_dir/um_ext.so" build_dir="$UM_ROOT/tmp/build/$(basename "$out_dir")"
  if [ -f "$so" ] && [ -z "$(find "$UM_ROOT/ext/um" -newer "$so" -type f | head -1)" ]; then
    return 0
  fi
  mkdir -p "$build_dir" "$out_dir"
  (
    cd "$build_dir"
    "$ruby" "$UM_ROOT/ext/um/extconf.rb" >/dev/null
    make -s -j"$(nproc)" >/dev/null
  ) || { echo "build of the extension failed" >&2; return 1; }
  cp "$build_dir/um_ext.so" "$so"
}
