# frozen_string_literal: true

require "mkmf"

abort "UringMachine runs on Linux only" unless RUBY_PLATFORM.include?("linux")
abort "liburing is needed (Debian/Ubuntu: apt install liburing-dev)" unless have_library("uring", "io_uring_queue_init", "liburing.h")

# TLS over the ring: the same libssl the openssl extension links.
unless pkg_config("openssl") || (have_library("crypto", "ERR_get_error") && have_library("ssl", "SSL_new"))
  abort "OpenSSL is needed (Debian/Ubuntu: apt install libssl-dev)"
end
abort "openssl/ssl.h is missing (Debian/Ubuntu: apt install libssl-dev)" unless have_header("openssl/ssl.h")

# Helpers an older liburing lacks are supplied by um_compat.h.
%w[io_uring_prep_cancel64 io_uring_get_events io_uring_submit_and_get_events io_uring_prep_futex_wait io_uring_prep_read_multishot
   io_uring_prep_bind io_uring_prep_listen io_uring_prep_waitid].each do |func|
  have_func(func, "liburing.h")
end
have_const("IORING_TIMEOUT_MULTISHOT", "liburing.h")
have_const("IOU_PBUF_RING_INC", "liburing.h")

$CFLAGS << " -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror=implicit-function-declaration"

if ENV["UM_DEBUG"] == "1"
  $CFLAGS << " -O0 -g3"
else
  $CFLAGS << " -O2 -DNDEBUG"
end

if ENV["UM_SANITIZE"] == "1"
  flags = " -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  # Ruby (not instrumented) switches fiber stacks behind ASan's back, so
  # redzones on the stack would give false reports: heap and globals are
  # checked, stack frames are not.
  $CFLAGS << flags << " -O1 -g --param=asan-stack=0 --param=asan-use-after-return=0"
  $LDFLAGS << flags
end

create_makefile("um_ext")
