// inotify on the ring: the events of an inotify fd are read through the
// machine, so waiting for them suspends only the calling fiber.
#include "um.h"
#include <string.h>
#include <sys/inotify.h>

// Room for many events at once; a read needs at least one event with the
// longest name (sizeof(struct inotify_event) + NAME_MAX + 1).
#define UM_INOTIFY_READ_LEN 16384

static VALUE sym_wd, sym_mask, sym_name;

// One Hash per event: {wd:, mask:, name:}; name is "" for an event on the
// watched item itself (inotify gives none), else the entry's name.
static VALUE um_inotify_parse(const char *buf, size_t len) {
  VALUE events = rb_ary_new();
  size_t pos = 0;
  while (pos + sizeof(struct inotify_event) <= len) {
    struct inotify_event evt;
    memcpy(&evt, buf + pos, sizeof(evt));
    const char *name = buf + pos + sizeof(evt);
    size_t room = len - pos - sizeof(evt);
    size_t name_len = evt.len > room ? room : evt.len;
    VALUE h = rb_hash_new();
    rb_hash_aset(h, sym_wd, INT2NUM(evt.wd));
    rb_hash_aset(h, sym_mask, UINT2NUM(evt.mask));
    rb_hash_aset(h, sym_name, rb_str_new(name, (long)strnlen(name, name_len)));
    rb_ary_push(events, h);
    pos += sizeof(evt) + evt.len;
  }
  return events;
}

// Waits for at least one event on the inotify fd and returns all that are
// queued (as much as one read takes). An fd that is not an inotify fd
// raises what the read gives (EINVAL for most).
VALUE um_inotify_get_events(struct um *m, int fd) {
  VALUE buf = rb_str_buf_new(UM_INOTIFY_READ_LEN);
  VALUE v = um_read(m, fd, buf, UM_INOTIFY_READ_LEN, 0, -1);
  if (!FIXNUM_P(v)) return v;
  long len = FIX2LONG(v);
  if (len == 0) return rb_ary_new();
  VALUE events = um_inotify_parse(RSTRING_PTR(buf), (size_t)len);
  RB_GC_GUARD(buf);
  return events;
}

void Init_um_inotify(void) {
  sym_wd = ID2SYM(rb_intern("wd"));
  sym_mask = ID2SYM(rb_intern("mask"));
  sym_name = ID2SYM(rb_intern("name"));
}
