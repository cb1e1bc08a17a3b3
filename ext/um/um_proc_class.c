// Ruby bindings for processes: argument checks and the method table.
// waitid_status, which builds a Process::Status, is Ruby code
// (lib/uringmachine/process.rb) on top of #waitid.
#include "um.h"

/*
 * call-seq: waitid(idtype, id, options) -> [pid, status, code]
 *
 * Waits for a change of state of a child process, as waitid(2), suspending
 * only the calling fiber. +idtype+ is UM::P_PID (+id+ a pid), UM::P_PIDFD
 * (+id+ a pidfd), UM::P_PGID or UM::P_ALL (+id+ ignored); +options+ combines
 * UM::WEXITED, UM::WSTOPPED, UM::WCONTINUED, UM::WNOHANG and UM::WNOWAIT.
 *
 * Returns the child's pid, its status (the exit code, or the signal that
 * killed, stopped or continued it) and the code saying which of these
 * happened (UM::CLD_EXITED, UM::CLD_KILLED, UM::CLD_DUMPED, UM::CLD_STOPPED,
 * UM::CLD_TRAPPED, UM::CLD_CONTINUED). With UM::WNOHANG and no child ready
 * the result is [0, 0, 0].
 *
 * Raises Errno::ECHILD when there is no such child (or it was already
 * reaped), and UM::Error on kernels older than Linux 6.7.
 *
 * @example
 *   pid = fork { exit 3 }
 *   machine.waitid(UM::P_PID, pid, UM::WEXITED)  # => [pid, 3, UM::CLD_EXITED]
 */
static VALUE um_waitid_m(VALUE self, VALUE idtype, VALUE id, VALUE options) {
  struct um *m = um_get_machine(self);
  int t = um_arg_int(idtype, "idtype");
  int i = um_arg_int(id, "id");
  int o = um_arg_int(options, "options");
  return um_waitid(m, t, i, o);
}

void Init_um_proc_class(void) {
  rb_define_method(cUM, "waitid", um_waitid_m, 3);
}
