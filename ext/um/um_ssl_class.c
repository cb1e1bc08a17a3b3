// Ruby bindings of TLS over the ring: argument checks and the method table.
// #ssl_set_bio itself is in lib/uringmachine/ssl.rb (it also wraps the
// socket's I/O methods); it calls the private #install_ssl_bio.
#include "um.h"
#include "um_ssl.h"

/*
 * call-seq: install_ssl_bio(ssl_socket) -> ssl_socket
 *
 * Private: puts the machine's BIO on the socket's SSL object (see
 * #ssl_set_bio).
 */
static VALUE um_install_ssl_bio_m(VALUE self, VALUE sock) {
  um_get_machine(self);
  um_ssl_set_bio(self, sock);
  return sock;
}

/*
 * call-seq: ssl_read(ssl_socket, buffer, maxlen) -> Integer
 *
 * Reads up to +maxlen+ bytes (at most 1 MiB a call) of decrypted data into
 * the buffer (a String, which is resized to what was read, or an
 * IO::Buffer, grown as needed); returns the count,
 * 0 at EOF (close_notify, or the peer closing the connection), 0 at once
 * for a +maxlen+ of 0. The record I/O runs on the machine; installs its BIO
 * on the socket if needed. Several fibers may read and write the same
 * socket: they take turns inside OpenSSL, and wait for the socket outside
 * it, so a reader waiting for data never holds up a writer.
 *
 * Raises TypeError when +ssl_socket+ is not an OpenSSL::SSL::SSLSocket or
 * the buffer is neither a String nor an IO::Buffer, ArgumentError for a
 * negative +maxlen+, OpenSSL::SSL::SSLError for TLS errors and Errno::* for
 * the socket's.
 *
 * @example
 *   machine.ssl_set_bio(ssl)
 *   buf = +""
 *   machine.ssl_read(ssl, buf, 4096)  # => bytes of plaintext, 0 at EOF
 */
static VALUE um_ssl_read_m(VALUE self, VALUE sock, VALUE buffer, VALUE maxlen) {
  um_get_machine(self);
  um_ssl_get(sock);
  um_arg_buffer(buffer);
  if (NIL_P(maxlen)) rb_raise(rb_eTypeError, "maxlen must be an Integer, not nil");
  ssize_t len = um_arg_len(maxlen, "maxlen");
  if (len == 0) return INT2FIX(0);
  return um_ssl_read(self, sock, buffer, (size_t)len);
}

/*
 * call-seq: ssl_write(ssl_socket, buffer, len = nil) -> Integer
 *
 * Encrypts and writes +len+ bytes of the buffer; nil, 0 or -1 (the
 * default) mean all of it. Returns the count, once everything is written.
 * Fibers writing to the same socket take turns, a call at a time; a fiber
 * reading it meanwhile is not held up. Same errors as #ssl_read (and
 * ArgumentError for +len+ below -1 or beyond the buffer); a peer that
 * closed gives Errno::EPIPE (or ECONNRESET).
 *
 * @example
 *   machine.ssl_set_bio(ssl)
 *   machine.ssl_write(ssl, "GET / HTTP/1.1\r\n\r\n")  # => 18
 */
static VALUE um_ssl_write_m(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 2, 3);
  VALUE sock = argv[0];
  VALUE buffer = argv[1];
  um_get_machine(self); // the socket is checked by um_ssl_set_bio, before any use
  um_arg_buffer(buffer);
  ssize_t len = -1;
  if (argc > 2 && !NIL_P(argv[2])) {
    long l = um_arg_long(argv[2], "len");
    if (l < -1) rb_raise(rb_eArgError, "len must be >= 0, or -1 for the whole buffer (got %ld)", l);
    len = l;
  }
  return um_ssl_write(self, sock, buffer, len);
}

/*
 * call-seq: UringMachine.ssl_interruption(ssl_socket) -> [value] or nil
 *
 * Private: takes what interrupted the socket's last BIO operation (an
 * exception, or the value the fiber was woken with), or nil.
 */
static VALUE um_s_ssl_interruption(VALUE klass, VALUE sock) {
  bool found;
  int state;
  VALUE value = um_ssl_take_pending(sock, &found, &state);
  if (found && state && !rb_obj_is_kind_of(value, rb_eException)) rb_jump_tag(state);
  return found ? rb_ary_new_from_args(1, value) : Qnil;
}

static VALUE um_ssl_yield(VALUE arg) {
  return rb_yield(arg);
}

/*
 * call-seq: UringMachine.ssl_call(ssl_socket, blocking) { } -> block's value
 *
 * Private: runs the block (a *_nonblock method of the socket, which never
 * waits for the fd) as the only fiber inside OpenSSL on this socket. With
 * blocking (an attempt of a blocking method, which then waits with
 * UringMachine.ssl_wait), OpenSSL's reads go to UringMachine.ssl_wait
 * rather than trying the socket first.
 */
static VALUE um_s_ssl_call(VALUE klass, VALUE sock, VALUE blocking) {
  um_ssl_get(sock);
  return um_ssl_call(sock, RTEST(blocking), um_ssl_yield, Qnil);
}

/*
 * call-seq: UringMachine.ssl_writing(ssl_socket) { } -> block's value
 *
 * Private: runs the block (a write to the socket, retried until done) as
 * the only writer of this socket.
 */
static VALUE um_s_ssl_writing(VALUE klass, VALUE sock) {
  um_ssl_get(sock);
  return um_ssl_locked(sock, true, um_ssl_yield, Qnil);
}

/*
 * call-seq: UringMachine.ssl_wait(ssl_socket, writable) -> nil or value
 *
 * Private: waits on the socket's machine until data came (it is kept for
 * OpenSSL) or the fd is writable; returns nil, or the value the fiber was
 * woken with instead.
 */
static VALUE um_s_ssl_wait(VALUE klass, VALUE sock, VALUE writable) {
  um_ssl_get(sock);
  return um_ssl_wait(sock, RTEST(writable));
}

/*
 * call-seq: UringMachine.ssl_shutdown(ssl_socket) -> nil
 *
 * Private: sends the socket's close_notify, waiting while the send buffer
 * is full (for #sysclose). OpenSSL's errors are ignored.
 */
static VALUE um_s_ssl_shutdown(VALUE klass, VALUE sock) {
  return um_ssl_shutdown(sock);
}

void Init_um_ssl_class(void) {
  Init_um_ssl();
  VALUE cUM = rb_const_get(rb_cObject, rb_intern("UringMachine"));
  rb_define_private_method(cUM, "install_ssl_bio", um_install_ssl_bio_m, 1);
  rb_define_method(cUM, "ssl_read", um_ssl_read_m, 3);
  rb_define_method(cUM, "ssl_write", um_ssl_write_m, -1);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_interruption", um_s_ssl_interruption, 1);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_call", um_s_ssl_call, 2);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_writing", um_s_ssl_writing, 1);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_wait", um_s_ssl_wait, 2);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_shutdown", um_s_ssl_shutdown, 1);
}
