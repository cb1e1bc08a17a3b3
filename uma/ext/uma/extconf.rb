# frozen_string_literal: true

require "mkmf"

# The parser is plain C (parser.c) and knows nothing of Ruby; the binding
# files build the Rack env from what it found.
$CFLAGS << " -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fvisibility=hidden"
if ENV["UM_DEBUG"] == "1"
  $CFLAGS << " -O0 -g3"
elsif ENV["UM_SANITIZE"] == "1"
  $CFLAGS << " -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer"
  $LDFLAGS << " -fsanitize=address,undefined"
else
  $CFLAGS << " -O2"
end
create_makefile("uma_ext")
