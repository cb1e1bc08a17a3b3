// Ruby bindings for inotify: UM.inotify_init, #inotify_add_watch,
// #inotify_rm_watch, #inotify_get_events and the UM::IN_* constants.
// #file_watch is Ruby code (lib/uringmachine/file_watch.rb) on top of them.
#include "um.h"
#include <errno.h>
#include <sys/inotify.h>

/*
 * call-seq: UringMachine.inotify_init -> fd
 *
 * Creates an inotify instance and returns its fd (non-blocking and
 * close-on-exec: the machine waits for its events through the ring).
 *
 * @example
 *   fd = UM.inotify_init
 *   machine.inotify_add_watch(fd, "/tmp", UM::IN_CREATE)
 */
static VALUE um_s_inotify_init(VALUE self) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) rb_syserr_fail(errno, "inotify_init");
  return INT2NUM(fd);
}

static unsigned um_inotify_mask_arg(VALUE mask) {
  if (!RB_INTEGER_TYPE_P(mask))
    rb_raise(rb_eTypeError, "mask must be an Integer, not %s", rb_obj_classname(mask));
  if (RTEST(rb_funcall(mask, rb_intern("<"), 1, INT2FIX(0))) || RTEST(rb_funcall(mask, rb_intern(">"), 1, UINT2NUM(UINT32_MAX))))
    rb_raise(rb_eArgError, "mask must be a combination of UM::IN_* flags (0 to 2**32 - 1)");
  return NUM2UINT(mask);
}

/*
 * call-seq: inotify_add_watch(fd, path, mask) -> wd
 *
 * Watches +path+ (a String or Pathname) for the events in +mask+ (UM::IN_*
 * flags) on the inotify fd; returns the watch descriptor. Adding a path
 * watched already returns its wd (its mask replaced, or extended with
 * UM::IN_MASK_ADD). Also a class method, as in 1.0.
 *
 * Raises Errno::ENOENT for a missing path, Errno::EBADF or Errno::EINVAL for
 * an fd that is not an inotify fd, Errno::EINVAL for a mask without events.
 *
 * @example
 *   fd = UM.inotify_init
 *   wd = UM.inotify_add_watch(fd, "/tmp", UM::IN_CREATE | UM::IN_DELETE)
 */
static VALUE um_inotify_add_watch_m(VALUE self, VALUE fd, VALUE path, VALUE mask) {
  int ifd = um_arg_fd(fd);
  VALUE str = rb_get_path(path);
  const char *cpath = StringValueCStr(str);
  int wd = inotify_add_watch(ifd, cpath, um_inotify_mask_arg(mask));
  if (wd < 0) rb_syserr_fail_str(errno, rb_sprintf("inotify_add_watch %"PRIsVALUE, str));
  RB_GC_GUARD(str);
  return INT2NUM(wd);
}

/*
 * call-seq: inotify_rm_watch(fd, wd) -> 0
 *
 * Removes the watch; an IN_IGNORED event for +wd+ follows. Raises
 * Errno::EINVAL for an unknown wd. Also a class method.
 *
 * @example
 *   UM.inotify_rm_watch(fd, wd)
 */
static VALUE um_inotify_rm_watch_m(VALUE self, VALUE fd, VALUE wd) {
  if (inotify_rm_watch(um_arg_fd(fd), um_arg_int(wd, "wd")) < 0) rb_syserr_fail(errno, "inotify_rm_watch");
  return INT2FIX(0);
}

/*
 * call-seq: inotify_get_events(fd) -> Array of Hash
 *
 * Waits (suspending only the calling fiber; cancellable by a timeout) until
 * the inotify fd has events and returns those queued, each a Hash
 * <tt>{wd:, mask:, name:}</tt>: the watch descriptor, the UM::IN_* bits,
 * and the name of the entry in a watched directory ("" for an event on the
 * watched item itself), as in 1.0. UM::IN_IGNORED events (a watch removed)
 * and UM::IN_Q_OVERFLOW (wd -1) are returned too.
 *
 * @example
 *   fd = UM.inotify_init
 *   machine.inotify_add_watch(fd, "/tmp", UM::IN_CREATE)
 *   machine.inotify_get_events(fd)
 *   # => [{wd: 1, mask: UM::IN_CREATE, name: "new.txt"}]
 */
static VALUE um_inotify_get_events_m(VALUE self, VALUE fd) {
  struct um *m = um_get_machine(self);
  return um_inotify_get_events(m, um_arg_fd(fd));
}

void Init_um_inotify_class(void) {
  Init_um_inotify();
  rb_define_singleton_method(cUM, "inotify_init", um_s_inotify_init, 0);
  rb_define_singleton_method(cUM, "inotify_add_watch", um_inotify_add_watch_m, 3);
  rb_define_singleton_method(cUM, "inotify_rm_watch", um_inotify_rm_watch_m, 2);
  rb_define_method(cUM, "inotify_add_watch", um_inotify_add_watch_m, 3);
  rb_define_method(cUM, "inotify_rm_watch", um_inotify_rm_watch_m, 2);
  rb_define_method(cUM, "inotify_get_events", um_inotify_get_events_m, 1);

#define DEF(name) rb_define_const(cUM, #name, UINT2NUM(name))
  DEF(IN_ACCESS); DEF(IN_MODIFY); DEF(IN_ATTRIB); DEF(IN_CLOSE_WRITE); DEF(IN_CLOSE_NOWRITE);
  DEF(IN_CLOSE); DEF(IN_OPEN); DEF(IN_MOVED_FROM); DEF(IN_MOVED_TO); DEF(IN_MOVE);
  DEF(IN_CREATE); DEF(IN_DELETE); DEF(IN_DELETE_SELF); DEF(IN_MOVE_SELF); DEF(IN_ALL_EVENTS);
  DEF(IN_UNMOUNT); DEF(IN_Q_OVERFLOW); DEF(IN_IGNORED); DEF(IN_ISDIR);
  DEF(IN_ONLYDIR); DEF(IN_DONT_FOLLOW); DEF(IN_EXCL_UNLINK); DEF(IN_MASK_ADD); DEF(IN_ONESHOT);
#ifdef IN_MASK_CREATE
  DEF(IN_MASK_CREATE);
#endif
#undef DEF
}
