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
 * Reads up to +maxlen+ bytes of decrypted data into the buffer (a String,
 * which is resized to what was read, or an IO::Buffer); returns the count,
 * 0 at EOF (close_notify, or the peer closing the connection). The record
 * I/O runs on the machine; installs its BIO on the socket if needed.
 *
 * Raises TypeError when +ssl_socket+ is not an OpenSSL::SSL::SSLSocket or
 * the buffer is neither a String nor an IO::Buffer, ArgumentError for a
 * negative +maxlen+, OpenSSL::SSL::SSLError for TLS errors and Errno::* for
 * the socket's.
 */
static VALUE um_ssl_read_m(VALUE self, VALUE sock, VALUE buffer, VALUE maxlen) {
  um_get_machine(self); // the socket is checked by um_ssl_set_bio, before any use
  um_arg_buffer(buffer);
  if (NIL_P(maxlen)) rb_raise(rb_eTypeError, "maxlen must be an Integer, not nil");
  ssize_t len = um_arg_len(maxlen, "maxlen");
  if (len == 0) return INT2FIX(0);
  return um_ssl_read(self, sock, buffer, (size_t)len);
}

/*
 * call-seq: ssl_write(ssl_socket, buffer, len = nil) -> Integer
 *
 * Encrypts and writes +len+ bytes of the buffer (default: all of it);
 * returns the count, once everything is written. Same errors as #ssl_read;
 * a peer that closed gives Errno::EPIPE (or ECONNRESET).
 */
static VALUE um_ssl_write_m(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 2, 3);
  VALUE sock = argv[0];
  VALUE buffer = argv[1];
  um_get_machine(self); // the socket is checked by um_ssl_set_bio, before any use
  um_arg_buffer(buffer);
  ssize_t len = argc > 2 ? um_arg_len(argv[2], "len") : -1;
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

/*
 * call-seq: UringMachine.ssl_nonblock(ssl_socket, on) -> nil
 *
 * Private: while on, the socket's BIO makes one attempt that does not wait
 * and lets OpenSSL report WANT_READ/WANT_WRITE (for the *_nonblock methods).
 */
static VALUE um_s_ssl_nonblock(VALUE klass, VALUE sock, VALUE on) {
  um_ssl_set_nonblock(sock, RTEST(on));
  return Qnil;
}

void Init_um_ssl_class(void) {
  Init_um_ssl();
  VALUE cUM = rb_const_get(rb_cObject, rb_intern("UringMachine"));
  rb_define_private_method(cUM, "install_ssl_bio", um_install_ssl_bio_m, 1);
  rb_define_method(cUM, "ssl_read", um_ssl_read_m, 3);
  rb_define_method(cUM, "ssl_write", um_ssl_write_m, -1);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_interruption", um_s_ssl_interruption, 1);
  rb_define_private_method(rb_singleton_class(cUM), "ssl_nonblock", um_s_ssl_nonblock, 2);
}
