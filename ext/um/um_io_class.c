// Ruby bindings of UM::IO: UM::IO.new(machine, target, mode = nil).
#include "um.h"
#include "um_buffers.h"
#include "um_io.h"
#include "um_ssl.h"

static VALUE cIO;
static VALUE sym_fd, sym_socket, sym_ssl;

static void io_mark(void *ptr) {
  struct um_io *io = ptr;
  rb_gc_mark_movable(io->machine);
  rb_gc_mark_movable(io->target);
}

static void io_compact(void *ptr) {
  struct um_io *io = ptr;
  io->machine = rb_gc_location(io->machine);
  io->target = rb_gc_location(io->target);
}

static void io_free(void *ptr) {
  struct um_io *io = ptr;
  if (io->m) {
    um_io_release_segments(io);
    um_unref(io->m);
  }
  free(io->segments);
  free(io);
}

static size_t io_memsize(const void *ptr) {
  const struct um_io *io = ptr;
  return sizeof(struct um_io) + io->cap * sizeof(struct um_io_segment);
}

static const rb_data_type_t io_type = {
  .wrap_struct_name = "UringMachine::IO",
  .function = { .dmark = io_mark, .dfree = io_free, .dsize = io_memsize, .dcompact = io_compact },
  .flags = RUBY_TYPED_WB_PROTECTED,
};

static VALUE io_allocate(VALUE klass) {
  struct um_io *io = calloc(1, sizeof(struct um_io));
  if (!io) rb_raise(rb_eNoMemError, "failed to allocate a UM::IO");
  io->machine = io->target = Qnil;
  io->fd = -1;
  return TypedData_Wrap_Struct(klass, &io_type, io);
}

static struct um_io *io_get(VALUE self) {
  struct um_io *io;
  TypedData_Get_Struct(self, struct um_io, &io_type, io);
  if (!io->m) rb_raise(eUMError, "UM::IO is not initialized");
  um_check_owner(io->m);
  return io;
}

/*
 * call-seq: UM::IO.new(machine, target, mode = nil) -> io
 *
 * A buffered reader/writer driven by the machine. +mode+ is :fd (the
 * target is an fd: read/write, the default), :socket (an fd: recv/send) or
 * :ssl (an OpenSSL::SSL::SSLSocket: decrypted data through the machine's
 * BIO, installed with UringMachine#ssl_set_bio).
 */
static VALUE io_initialize(int argc, VALUE *argv, VALUE self) {
  struct um_io *io;
  TypedData_Get_Struct(self, struct um_io, &io_type, io);
  if (io->m) rb_raise(eUMError, "UM::IO is already initialized");
  rb_check_arity(argc, 2, 3);
  struct um *m = um_get_machine(argv[0]);
  VALUE mode = argc > 2 ? argv[2] : Qnil;
  if (!NIL_P(mode) && mode != sym_fd && mode != sym_socket && mode != sym_ssl)
    rb_raise(rb_eArgError, "mode must be :fd, :socket or :ssl, not %" PRIsVALUE, rb_inspect(mode));
  if (mode == sym_ssl)
    rb_funcall(argv[0], rb_intern("ssl_set_bio"), 1, argv[1]);
  else if (!RB_INTEGER_TYPE_P(argv[1]))
    rb_raise(rb_eTypeError, "target must be an Integer fd, not %s", rb_obj_classname(argv[1]));

  RB_OBJ_WRITE(self, &io->machine, argv[0]);
  RB_OBJ_WRITE(self, &io->target, argv[1]);
  io->fd = mode == sym_ssl ? -1 : NUM2INT(argv[1]);
  io->mode = mode == sym_ssl ? UM_IO_SSL : mode == sym_socket ? UM_IO_SOCKET : UM_IO_FD;
  io->m = m;
  m->refs++;
  return self;
}

static size_t io_limit_arg(int argc, VALUE *argv, int index) {
  if (argc <= index || NIL_P(argv[index])) return 0;
  long limit = um_arg_long(argv[index], "limit");
  if (limit < 0) rb_raise(rb_eArgError, "negative limit: %ld", limit);
  return (size_t)limit;
}

/*
 * call-seq: read_line(limit = 0) -> String or nil
 *
 * The next line without its "\n" or "\r\n"; nil at EOF. With a limit, at
 * most that many bytes (a longer line comes back in parts, as IO#gets does).
 */
static VALUE io_read_line(int argc, VALUE *argv, VALUE self) {
  struct um_io *io = io_get(self);
  rb_check_arity(argc, 0, 1);
  return um_io_read_to_delim(io, "\n", 1, io_limit_arg(argc, argv, 0), true);
}

/*
 * call-seq: read_to_delim(delim, limit = 0) -> String or nil
 *
 * Data up to the delimiter String (consumed, not returned); nil at EOF.
 */
static VALUE io_read_to_delim(int argc, VALUE *argv, VALUE self) {
  struct um_io *io = io_get(self);
  rb_check_arity(argc, 1, 2);
  VALUE delim = argv[0];
  if (!RB_TYPE_P(delim, T_STRING))
    rb_raise(rb_eTypeError, "delimiter must be a String, not %s", rb_obj_classname(delim));
  if (RSTRING_LEN(delim) == 0) rb_raise(rb_eArgError, "empty delimiter");
  VALUE ret = um_io_read_to_delim(io, RSTRING_PTR(delim), RSTRING_LEN(delim), io_limit_arg(argc, argv, 1), false);
  RB_GC_GUARD(delim);
  return ret;
}

/*
 * call-seq: read(len) -> String or nil
 *
 * Exactly +len+ bytes (nil at EOF before that many); 0: whatever is
 * buffered; negative: up to -len bytes, waiting for at least one.
 */
static VALUE io_read(VALUE self, VALUE len) {
  struct um_io *io = io_get(self);
  return um_io_read(io, um_arg_long(len, "length"));
}

/* Skips +len+ bytes; returns how many were skipped (fewer at EOF). */
static VALUE io_skip(VALUE self, VALUE len) {
  struct um_io *io = io_get(self);
  long n = um_arg_long(len, "length");
  if (n < 0) rb_raise(rb_eArgError, "negative length: %ld", n);
  return SIZET2NUM(um_io_skip(io, (size_t)n));
}

/*
 * call-seq: read_each { |io_buffer| } -> nil
 *
 * Calls the block with a read-only IO::Buffer view of each chunk received
 * until EOF. No copy is made: a view is valid only inside the block.
 */
static VALUE io_read_each(VALUE self) {
  struct um_io *io = io_get(self);
  rb_need_block();
  return um_io_read_each(io);
}

/* Whether all data was consumed and the peer closed (waits to find out). */
static VALUE io_eof_p(VALUE self) {
  struct um_io *io = io_get(self);
  if (io->pending) return Qfalse;
  return um_io_fill(io) ? Qfalse : Qtrue;
}

/* Bytes consumed by reads so far. */
static VALUE io_consumed(VALUE self) {
  return ULL2NUM(io_get(self)->consumed);
}

/* Bytes received and buffered, not yet consumed. */
static VALUE io_pending(VALUE self) {
  return SIZET2NUM(io_get(self)->pending);
}

/* Discards the buffered data. */
static VALUE io_clear(VALUE self) {
  um_io_clear(io_get(self));
  return self;
}

/*
 * call-seq: write(*buffers) -> Integer
 *
 * Writes every buffer, all of it; returns the total bytes.
 */
static VALUE io_write(int argc, VALUE *argv, VALUE self) {
  struct um_io *io = io_get(self);
  for (int i = 0; i < argc; i++) um_arg_buffer(argv[i]);
  if (io->mode == UM_IO_SOCKET) return um_sendv(io->m, io->fd, argc, argv);
  if (io->mode == UM_IO_SSL) {
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += NUM2SIZET(um_ssl_write(io->machine, io->target, argv[i], -1));
    return SIZET2NUM(total);
  }
  return um_writev(io->m, io->fd, argc, argv, -1);
}

/* The fd, or the SSL socket. */
static VALUE io_target(VALUE self) {
  return io_get(self)->target;
}

void Init_um_io_class(void) {
  sym_fd = ID2SYM(rb_intern("fd"));
  sym_socket = ID2SYM(rb_intern("socket"));
  sym_ssl = ID2SYM(rb_intern("ssl"));

  cIO = rb_define_class_under(cUM, "IO", rb_cObject);
  rb_define_alloc_func(cIO, io_allocate);
  rb_define_method(cIO, "initialize", io_initialize, -1);
  rb_define_method(cIO, "read_line", io_read_line, -1);
  rb_define_method(cIO, "read_to_delim", io_read_to_delim, -1);
  rb_define_method(cIO, "read", io_read, 1);
  rb_define_method(cIO, "skip", io_skip, 1);
  rb_define_method(cIO, "read_each", io_read_each, 0);
  rb_define_method(cIO, "eof?", io_eof_p, 0);
  rb_define_method(cIO, "consumed", io_consumed, 0);
  rb_define_method(cIO, "pending", io_pending, 0);
  rb_define_method(cIO, "clear", io_clear, 0);
  rb_define_method(cIO, "write", io_write, -1);
  rb_define_method(cIO, "target", io_target, 0);
}
