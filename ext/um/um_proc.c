// Processes: waitid over io_uring (IORING_OP_WAITID, Linux 6.7).
#include "um.h"
#include <string.h>
#include <sys/wait.h>

// The siginfo the kernel fills is part of the record, which the kernel holds
// until its CQE: no OP_F_CALLER_MEM, so a fiber woken early (timeout,
// exception) returns at once and the late completion just frees the record.
VALUE um_waitid(struct um *m, int idtype, int id, int options) {
  um_require_kernel(607, "waitid (IORING_OP_WAITID)");

  struct um_op *op = um_op_new(m, OP_WAITID, 0);
  // With WNOHANG and no child ready the kernel reports pid 0: start zeroed.
  memset(&op->data.siginfo, 0, sizeof(op->data.siginfo));
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_waitid(sqe, (idtype_t)idtype, (id_t)id, &op->data.siginfo, options, 0);

  VALUE v = um_op_run(m, op);
  if (v != Qundef) return v;

  int32_t res = op->res;
  siginfo_t info = op->data.siginfo;
  um_op_release(m, op);
  um_raise_on_error(res, "waitid");
  return rb_ary_new_from_args(3, INT2NUM(info.si_pid), INT2NUM(info.si_status), INT2NUM(info.si_code));
}
