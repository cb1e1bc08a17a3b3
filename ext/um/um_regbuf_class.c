// Ruby bindings of registered (fixed) buffers: argument checks and the
// method table. The engine is in um_regbuf.c.
#include "um.h"
#include <limits.h>


static unsigned um_regbuf_index_arg(VALUE v) {
  long index = um_arg_long(v, "buffer index");
  if (index < 0) rb_raise(rb_eArgError, "negative buffer index: %ld", index);
  // Beyond any registration: reported as out of range by the engine.
  return index > UINT_MAX ? UINT_MAX : (unsigned)index;
}

static size_t um_regbuf_offset_arg(VALUE v) {
  if (NIL_P(v)) return 0;
  long ofs = um_arg_long(v, "buffer offset");
  if (ofs < 0) rb_raise(rb_eArgError, "negative buffer offset: %ld", ofs);
  return (size_t)ofs;
}

/*
 * call-seq: register_buffers(buffers) -> Integer
 *
 * Registers the memory of +buffers+, an Array of IO::Buffer, with the ring,
 * for use by index (0 for the first buffer) in #read_fixed and #write_fixed.
 * Returns how many buffers were registered. Each buffer is locked while
 * registered (it can't be resized, transferred or freed) and kept alive by
 * the machine. A new call replaces the previous registration (the old
 * buffers are unlocked first, and stay unregistered if the new registration
 * fails); an empty Array just unregisters.
 *
 * Strings are not accepted: their memory moves when they change. Registered
 * memory counts against RLIMIT_MEMLOCK (NoMemoryError when it runs out);
 * the kernel refuses file-backed mappings (IO::Buffer.map) with
 * Errno::EFAULT. Raises UM::Error while a fixed-buffer operation is pending.
 * Call #unregister_buffers when done: buffers of a machine that is garbage
 * collected while they are registered stay locked.
 *
 * @example
 *   bufs = [IO::Buffer.new(4096), IO::Buffer.new(4096)]
 *   machine.register_buffers(bufs)  # => bufs, locked while registered
 *   machine.read_fixed(fd, 0)       # reads into bufs[0]
 */
static VALUE um_register_buffers_m(VALUE self, VALUE buffers) {
  struct um *m = um_get_machine(self);
  if (!RB_TYPE_P(buffers, T_ARRAY))
    rb_raise(rb_eTypeError, "buffers must be an Array of IO::Buffer, not %s", rb_obj_classname(buffers));
  return um_register_buffers(m, buffers);
}

/*
 * call-seq: unregister_buffers -> nil
 *
 * Drops the registration made by #register_buffers and unlocks its buffers.
 * Does nothing when no buffers are registered. Raises UM::Error while a
 * fixed-buffer operation is pending (cancel or finish it first): the kernel
 * may still be using the memory.
 *
 * @example
 *   machine.register_buffers([IO::Buffer.new(4096)])
 *   machine.unregister_buffers  # the buffers are unlocked
 */
static VALUE um_unregister_buffers_m(VALUE self) {
  return um_unregister_buffers(um_get_machine(self));
}

struct um_fixed_call {
  int fd;
  unsigned index;
  ssize_t len;
  size_t buffer_offset;
  int64_t file_offset;
};

// (fd, index, len = nil, buffer_offset = 0, file_offset = -1)
static struct um_fixed_call um_parse_fixed_args(int argc, VALUE *argv) {
  rb_check_arity(argc, 2, 5);
  struct um_fixed_call c;
  c.fd = um_arg_fd(argv[0]);
  c.index = um_regbuf_index_arg(argv[1]);
  c.len = argc > 2 ? um_arg_len(argv[2], "length") : -1;
  c.buffer_offset = argc > 3 ? um_regbuf_offset_arg(argv[3]) : 0;
  c.file_offset = argc > 4 ? um_arg_file_offset(argv[4]) : -1;
  return c;
}

/*
 * call-seq: read_fixed(fd, index, maxlen = nil, buffer_offset = 0, file_offset = -1) -> Integer
 *
 * Reads up to +maxlen+ bytes (default: up to the end of the buffer) from +fd+
 * into registered buffer #+index+ at +buffer_offset+; +file_offset+ -1 reads
 * at the fd's current position. Returns the bytes read, 0 at EOF.
 *
 * Raises ArgumentError when +index+ or the range is outside the
 * registration, UM::Error when no buffers are registered.
 *
 * @example
 *   buf = IO::Buffer.new(4096)
 *   machine.register_buffers([buf])
 *   machine.read_fixed(fd, 0, 100)  # => bytes read into buf
 */
static VALUE um_read_fixed_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  struct um_fixed_call c = um_parse_fixed_args(argc, argv);
  return um_read_fixed(m, c.fd, c.index, c.len, c.buffer_offset, c.file_offset);
}

/*
 * call-seq: write_fixed(fd, index, len = nil, buffer_offset = 0, file_offset = -1) -> Integer
 *
 * Writes +len+ bytes (default: up to the end of the buffer) from registered
 * buffer #+index+ at +buffer_offset+ to +fd+; +file_offset+ -1 writes at the
 * fd's current position. Returns the bytes written (may be partial).
 *
 * Raises ArgumentError when +index+ or the range is outside the
 * registration, UM::Error when no buffers are registered.
 *
 * @example
 *   buf = IO::Buffer.new(5)
 *   buf.set_string("hello")
 *   machine.register_buffers([buf])
 *   machine.write_fixed(fd, 0)  # => 5
 */
static VALUE um_write_fixed_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  struct um_fixed_call c = um_parse_fixed_args(argc, argv);
  return um_write_fixed(m, c.fd, c.index, c.len, c.buffer_offset, c.file_offset);
}

void Init_um_regbuf_class(void) {
  rb_define_method(cUM, "register_buffers", um_register_buffers_m, 1);
  rb_define_method(cUM, "unregister_buffers", um_unregister_buffers_m, 0);
  rb_define_method(cUM, "read_fixed", um_read_fixed_m, -1);
  rb_define_method(cUM, "write_fixed", um_write_fixed_m, -1);
}
