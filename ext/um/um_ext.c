// Entry point of the extension: one init per part.
#include "um.h"

void Init_um_ext(void) {
  Init_um_class();
  Init_um_sched();
  Init_um_fiber();
  Init_um_buffer();
  Init_um_async_op();
  Init_um_const();
  Init_um_net_class();
  Init_um_sync_class();
  Init_um_multishot_class();
  Init_um_io_class();
  Init_um_proc_class();
  Init_um_select_class();
  Init_um_regbuf_class();
  Init_um_fiber_scheduler_class();
  Init_um_ssl_class();
  Init_um_inotify_class();
}
