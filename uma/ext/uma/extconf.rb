# frozen_string_literal: true

require "mkmf"

# The parser is plain C (parser.c) and knows nothing of Ruby; the binding
# files build the Rack env from what it found.
$CFLAGS << " -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fvisibility=hidden"
if ENV["UM_DEBUG"] == "1"
  $CFLAGS << " -O0 -g3"
elsif ENV["UM_SANITIZE"] == "1"
  # As for the machine's extension (ext/um/extconf.rb): Ruby switches fiber
  # stacks behind ASan's back, so stack redzones would leave stale poison on
  # a reused fiber stack and give false reports. Heap and globals are checked.
  $CFLAGS << " -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
             " --param=asan-stack=0 --param=asan-use-after-return=0"
  $LDFLAGS << " -fsanitize=address,undefined"
else
  $CFLAGS << " -O2"
end
create_makefile("uma_ext")
