// Ruby bindings of the multishot operations and the buffer pool figures.
#include "um.h"
#include "um_buffers.h"

/*
 * call-seq: accept_each(fd) { |conn_fd| } -> nil
 *
 * Accepts connections on the listening socket with one multishot accept,
 * calling the block with each new fd. Ends quietly when the socket is shut
 * down or closed.
 *
 * @example
 *   server = machine.tcp_listen("127.0.0.1", 9000)
 *   machine.accept_each(server) do |fd|
 *     machine.spin { handle(fd) }
 *   end
 */
static VALUE um_accept_each_m(VALUE self, VALUE fd) {
  struct um *m = um_get_machine(self);
  rb_need_block();
  return um_accept_each(m, um_arg_fd(fd));
}

/*
 * call-seq: read_each(fd) { |str| } -> nil
 *
 * Reads from the fd with one multishot read over the buffer pool (Linux
 * 6.7), calling the block with each chunk as a new String, until EOF. The fd
 * must be pollable (pipe, socket).
 *
 * @example
 *   r, w = UM.pipe
 *   machine.spin { machine.write(w, "abc"); machine.close(w) }
 *   machine.read_each(r) { |chunk| p chunk }  # prints "abc"
 */
static VALUE um_read_each_m(VALUE self, VALUE fd) {
  struct um *m = um_get_machine(self);
  rb_need_block();
  return um_read_each(m, um_arg_fd(fd));
}

/*
 * call-seq: recv_each(fd, flags = 0) { |str| } -> nil
 *
 * Receives from the socket with one multishot recv over the buffer pool,
 * calling the block with each chunk as a new String, until EOF.
 *
 * @example
 *   machine.recv_each(fd) { |data| machine.send(fd, data) }  # echo until EOF
 */
static VALUE um_recv_each_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 1, 2);
  rb_need_block();
  int flags = argc > 1 && !NIL_P(argv[1]) ? um_arg_int(argv[1], "flags") : 0;
  return um_recv_each(m, um_arg_fd(argv[0]), flags);
}

/*
 * call-seq: buffer_pool_metrics -> Hash
 *
 * The provided-buffer pool: :buffer_size, :buffers (in the pool),
 * :buffers_in_use (holding data not yet consumed, or taken by the kernel),
 * :buffer_grows (times it grew because the kernel ran short),
 * :buffers_incremental (whether buffers are consumed incrementally, Linux
 * 6.12). All 0 before first use.
 * The same figures appear in #metrics.
 *
 * @example
 *   machine.buffer_pool_metrics[:buffers_in_use]  # => 0 when no multishot read runs
 */
static VALUE um_buffer_pool_metrics(VALUE self) {
  VALUE h = rb_hash_new();
  um_pool_metrics(um_get_machine(self), h);
  return h;
}

void Init_um_multishot_class(void) {
  rb_define_method(cUM, "accept_each", um_accept_each_m, 1);
  rb_define_method(cUM, "read_each", um_read_each_m, 1);
  rb_define_method(cUM, "recv_each", um_recv_each_m, -1);
  rb_define_method(cUM, "buffer_pool_metrics", um_buffer_pool_metrics, 0);
}
