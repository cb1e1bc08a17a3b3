// Ruby bindings of UM::IO: UM::IO.new(machine, target, mode = nil).
#include "um.h"
#include "um_buffers.h"
#include "um_io.h"
#include "um_ssl.h"
#include <sys/stat.h>

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
 * A buffered reader/writer driven by the machine. +target+ is an fd or an
 * OpenSSL::SSL::SSLSocket. +mode+ is :fd (read/write on the fd), :socket
 * (recv/send on the fd) or :ssl (decrypted data through the machine's BIO,
 * installed with UringMachine#ssl_set_bio). Without a mode, an SSL socket
 * implies :ssl, a socket fd :socket and any other fd :fd.
 *
 * One read at a time: while a reading method (#read, #read_line,
 * #read_to_delim, #skip, #clear, #eof?, #read_each, #resp_read) is in
 * progress, another one on the same UM::IO, whether called from the block
 * of #read_each or from another fiber while the first waits for data,
 * raises UM::Error and leaves the data alone. Fibers taking turns (one read
 * finished before the next starts) may share a UM::IO. #write, #pending,
 * #consumed and #mode may be called at any time.
 *
 * @example
 *   io = UM::IO.new(machine, fd, :socket)
 *   io.read_line
 */
static VALUE io_initialize(int argc, VALUE *argv, VALUE self) {
  struct um_io *io;
  TypedData_Get_Struct(self, struct um_io, &io_type, io);
  if (io->m) rb_raise(eUMError, "UM::IO is already initialized");
  rb_check_arity(argc, 2, 3);
  struct um *m = um_get_machine(argv[0]);
  VALUE target = argv[1];
  VALUE mode = argc > 2 ? argv[2] : Qnil;
  if (!NIL_P(mode) && mode != sym_fd && mode != sym_socket && mode != sym_ssl)
    rb_raise(rb_eArgError, "mode must be :fd, :socket or :ssl, not %" PRIsVALUE, rb_inspect(mode));
  if (NIL_P(mode) && !RB_INTEGER_TYPE_P(target)) mode = sym_ssl;
  if (mode == sym_ssl)
    rb_funcall(argv[0], rb_intern("ssl_set_bio"), 1, target); // TypeError unless an SSL socket
  else if (!RB_INTEGER_TYPE_P(target))
    rb_raise(rb_eTypeError, "target must be an Integer fd, not %s", rb_obj_classname(target));
  int fd = mode == sym_ssl ? -1 : NUM2INT(target);
  if (NIL_P(mode)) {
    struct stat st;
    mode = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? sym_socket : sym_fd;
  }

  RB_OBJ_WRITE(self, &io->machine, argv[0]);
  RB_OBJ_WRITE(self, &io->target, target);
  io->fd = fd;
  io->mode = mode == sym_ssl ? UM_IO_SSL : mode == sym_socket ? UM_IO_SOCKET : UM_IO_FD;
  io->m = m;
  m->refs++;
  return self;
}

/*
 * The mode: :fd, :socket or :ssl.
 *
 * @example
 *   machine.io(fd).mode           # => :fd
 *   machine.io(sock_fd).mode      # => :socket
 *   machine.io(ssl_socket).mode   # => :ssl
 */
static VALUE io_mode(VALUE self) {
  struct um_io *io = io_get(self);
  return io->mode == UM_IO_SSL ? sym_ssl : io->mode == UM_IO_SOCKET ? sym_socket : sym_fd;
}

static size_t io_limit_arg(int argc, VALUE *argv, int index) {
  if (argc <= index || NIL_P(argv[index])) return 0;
  long limit = um_arg_long(argv[index], "limit");
  if (limit < 0) rb_raise(rb_eArgError, "negative limit: %ld", limit);
  return (size_t)limit;
}

// The arguments of a reading method, run by um_io_exclusive.
struct io_args {
  struct um_io *io;
  const char *delim;
  size_t dlen;
  size_t limit;
  long len;
};

static VALUE io_read_line_body(VALUE arg) {
  struct io_args *a = (struct io_args *)arg;
  return um_io_read_to_delim(a->io, "\n", 1, a->limit, true);
}

/*
 * call-seq: read_line(limit = 0) -> String or nil
 *
 * The next line without its "\n" or "\r\n". nil at EOF, and nil, with the
 * data left in place, when no line end comes before EOF or within the
 * first +limit+ bytes (the line end counted; 0: no limit): protocol code
 * reads that as an error, and #read can still take the rest.
 *
 * @example
 *   # the peer sent "GET / HTTP/1.1\r\nHost: x\r\n"
 *   io.read_line  # => "GET / HTTP/1.1"
 *   io.read_line  # => "Host: x"
 *   io.read_line  # => nil at EOF
 */
static VALUE io_read_line(int argc, VALUE *argv, VALUE self) {
  struct um_io *io = io_get(self);
  rb_check_arity(argc, 0, 1);
  struct io_args a = { .io = io, .limit = io_limit_arg(argc, argv, 0) };
  return um_io_exclusive(io, "read_line", io_read_line_body, (VALUE)&a);
}

static VALUE io_read_to_delim_body(VALUE arg) {
  struct io_args *a = (struct io_args *)arg;
  return um_io_read_to_delim(a->io, a->delim, a->dlen, a->limit, false);
}

/*
 * call-seq: read_to_delim(delim, limit = 0) -> String or nil
 *
 * Data up to the delimiter String (consumed, not returned). nil at EOF, and
 * nil, with the data left in place, when no delimiter ends before EOF or
 * within the first +limit+ bytes (0: no limit), as for #read_line.
 *
 * @example
 *   # the peer sent "a,b,"
 *   io.read_to_delim(",")  # => "a"
 *   io.read_to_delim(",")  # => "b"
 */
static VALUE io_read_to_delim(int argc, VALUE *argv, VALUE self) {
  struct um_io *io = io_get(self);
  rb_check_arity(argc, 1, 2);
  VALUE delim = argv[0];
  if (!RB_TYPE_P(delim, T_STRING))
    rb_raise(rb_eTypeError, "delimiter must be a String, not %s", rb_obj_classname(delim));
  if (RSTRING_LEN(delim) == 0) rb_raise(rb_eArgError, "empty delimiter");
  // A frozen copy: nobody can change it while the read waits for data.
  delim = rb_str_new_frozen(delim);
  struct io_args a = { .io = io, .delim = RSTRING_PTR(delim), .dlen = RSTRING_LEN(delim),
    .limit = io_limit_arg(argc, argv, 1) };
  VALUE ret = um_io_exclusive(io, "read_to_delim", io_read_to_delim_body, (VALUE)&a);
  RB_GC_GUARD(delim);
  return ret;
}

static VALUE io_read_body(VALUE arg) {
  struct io_args *a = (struct io_args *)arg;
  return um_io_read(a->io, a->len);
}

/*
 * call-seq: read(len) -> String or nil
 *
 * Positive: exactly +len+ bytes (nil, the data left in place, at EOF before
 * that many). 0: whatever is buffered, waiting for some data when nothing
 * is; nil at EOF. Negative: the same, up to -len bytes.
 *
 * @example
 *   io.read(5)   # => "hello", exactly 5 bytes
 *   io.read(0)   # => whatever is buffered
 *   io.read(-3)  # => up to 3 bytes
 */
static VALUE io_read(VALUE self, VALUE len) {
  struct um_io *io = io_get(self);
  struct io_args a = { .io = io, .len = um_arg_long(len, "length") };
  return um_io_exclusive(io, "read", io_read_body, (VALUE)&a);
}

static VALUE io_skip_body(VALUE arg) {
  struct io_args *a = (struct io_args *)arg;
  return SIZET2NUM(um_io_skip(a->io, (size_t)a->len));
}

/*
 * Skips +len+ bytes; returns how many were skipped (fewer at EOF).
 *
 * @example
 *   io.skip(4)  # => 4
 *   io.read(2)
 */
static VALUE io_skip(VALUE self, VALUE len) {
  struct um_io *io = io_get(self);
  long n = um_arg_long(len, "length");
  if (n < 0) rb_raise(rb_eArgError, "negative length: %ld", n);
  struct io_args a = { .io = io, .len = n };
  return um_io_exclusive(io, "skip", io_skip_body, (VALUE)&a);
}

static VALUE io_read_each_body(VALUE arg) {
  return um_io_read_each((struct um_io *)arg);
}

/*
 * call-seq: read_each { |io_buffer| } -> nil
 *
 * Calls the block with a read-only IO::Buffer view of each chunk received
 * (pending data first) until EOF. No copy is made: a view is valid only
 * inside the block. The block must not read from this UM::IO (UM::Error).
 *
 * @example
 *   io.read_each { |buf| total += buf.size }
 */
static VALUE io_read_each(VALUE self) {
  struct um_io *io = io_get(self);
  rb_need_block();
  return um_io_exclusive(io, "read_each", io_read_each_body, (VALUE)io);
}

static VALUE io_eof_body(VALUE arg) {
  struct um_io *io = (struct um_io *)arg;
  if (io->pending) return Qfalse;
  return um_io_fill(io) ? Qfalse : Qtrue;
}

/*
 * Whether all data was consumed and the peer closed (waits to find out).
 *
 * @example
 *   io.read_line  # => "last"
 *   io.eof?       # => true
 */
static VALUE io_eof_p(VALUE self) {
  struct um_io *io = io_get(self);
  return um_io_exclusive(io, "eof?", io_eof_body, (VALUE)io);
}

/*
 * Bytes consumed by reads so far.
 *
 * @example
 *   io.read(3)
 *   io.consumed  # => 3
 */
static VALUE io_consumed(VALUE self) {
  return ULL2NUM(io_get(self)->consumed);
}

/*
 * Bytes received and buffered, not yet consumed.
 *
 * @example
 *   io.read(1)
 *   io.pending  # => bytes received and not read yet
 */
static VALUE io_pending(VALUE self) {
  return SIZET2NUM(io_get(self)->pending);
}

static VALUE io_clear_body(VALUE arg) {
  um_io_clear((struct um_io *)arg);
  return Qnil;
}

/*
 * Discards the buffered data; returns self.
 *
 * @example
 *   io.clear
 *   io.pending  # => 0
 */
static VALUE io_clear(VALUE self) {
  struct um_io *io = io_get(self);
  um_io_exclusive(io, "clear", io_clear_body, (VALUE)io);
  return self;
}

static VALUE io_resp_read_body(VALUE arg) {
  return um_resp_read((struct um_io *)arg);
}

/*
 * call-seq: resp_read -> object
 *
 * Reads one RESP (Redis protocol, RESP2 or RESP3) value, as 1.0 does:
 * simple and bulk strings as String (UTF-8), integers and big numbers as
 * Integer, doubles as Float, booleans as true/false, null (and RESP2's
 * null bulk string and null array) as nil, arrays, sets and pushes as
 * Array, maps as Hash, verbatim strings as their text. An error reply is
 * returned (not raised) as a UM::IO::RESPError. Attributes ("|") are read
 * and dropped: the value they annotate is returned. nil at EOF; EOFError
 * when the stream ends inside a value; UM::Error on malformed data.
 *
 * @example
 *   io.resp_write(["GET", "key"])
 *   io.resp_read  # => "value" (a Redis reply)
 */
static VALUE io_resp_read(VALUE self) {
  struct um_io *io = io_get(self);
  return um_io_exclusive(io, "resp_read", io_resp_read_body, (VALUE)io);
}

static VALUE io_write_all(struct um_io *io, int argc, VALUE *argv) {
  for (int i = 0; i < argc; i++) um_arg_buffer(argv[i]);
  if (io->mode == UM_IO_SOCKET) return um_sendv(io->m, io->fd, argc, argv);
  if (io->mode == UM_IO_SSL) {
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += NUM2SIZET(um_ssl_write(io->machine, io->target, argv[i], -1));
    return SIZET2NUM(total);
  }
  return um_writev(io->m, io->fd, argc, argv, -1);
}

/*
 * call-seq: resp_write(obj) -> Integer
 *
 * Writes +obj+ RESP-encoded (see UM::IO.resp_encode); returns the bytes
 * written. A Redis command is an Array of Strings: resp_write(["SET", "k", "v"]).
 *
 * @example
 *   io.resp_write(["SET", "k", "v"])  # => 27
 */
static VALUE io_resp_write(VALUE self, VALUE obj) {
  struct um_io *io = io_get(self);
  VALUE str = rb_str_buf_new(64);
  um_resp_encode(str, obj);
  return io_write_all(io, 1, &str);
}

/*
 * call-seq: UM::IO.resp_encode(buf, obj) -> buf
 *
 * Appends +obj+ RESP-encoded to the String +buf+, as 1.0 does: String as a
 * bulk string, Integer as an integer (a big number beyond 64 bits), Float
 * as a double, true/false as booleans, nil as RESP3 null, Array as an
 * array, Hash as a map. Beyond 1.0: a Symbol as the bulk string of its
 * name, a UM::IO::RESPError as an error reply. Anything else raises
 * TypeError; a structure nested deeper than 512 levels ArgumentError.
 *
 * @example
 *   UM::IO.resp_encode(+"", ["SET", "k"])  # => "*2\r\n$3\r\nSET\r\n$1\r\nk\r\n"
 */
static VALUE io_s_resp_encode(VALUE self, VALUE buf, VALUE obj) {
  if (!RB_TYPE_P(buf, T_STRING))
    rb_raise(rb_eTypeError, "buffer must be a String, not %s", rb_obj_classname(buf));
  rb_str_modify(buf);
  um_resp_encode(buf, obj);
  return buf;
}

/*
 * call-seq: write(*buffers) -> Integer
 *
 * Writes every buffer, all of it; returns the total bytes.
 *
 * @example
 *   io.write("HTTP/1.1 200 OK\r\n", "\r\n")  # => 19
 */
static VALUE io_write(int argc, VALUE *argv, VALUE self) {
  return io_write_all(io_get(self), argc, argv);
}

/*
 * The fd, or the SSL socket.
 *
 * @example
 *   UM::IO.new(machine, 7).target  # => 7
 */
static VALUE io_target(VALUE self) {
  return io_get(self)->target;
}

void Init_um_io_class(void) {
  sym_fd = ID2SYM(rb_intern("fd"));
  sym_socket = ID2SYM(rb_intern("socket"));
  sym_ssl = ID2SYM(rb_intern("ssl"));

  /*
   * Document-class: UringMachine::IO
   *
   * Buffered reads and writes on an fd, a socket or a TLS socket, through
   * the machine: lines, delimited records, exact lengths and RESP values,
   * read from the machine's kernel buffer pool. Made by UringMachine#io or
   * UM::IO.new(machine, target, mode).
   */
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
  rb_define_method(cIO, "mode", io_mode, 0);
  rb_define_method(cIO, "resp_read", io_resp_read, 0);
  rb_define_method(cIO, "resp_write", io_resp_write, 1);
  rb_define_singleton_method(cIO, "resp_encode", io_s_resp_encode, 2);
  // An error reply of a RESP peer, returned by #resp_read (as in 1.0).
  rb_define_class_under(cIO, "RESPError", rb_eStandardError);
}
