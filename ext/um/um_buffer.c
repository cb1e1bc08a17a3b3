// Access to the memory of buffers given by the user: a String (grown as
// needed) or an IO::Buffer.
#include "um.h"
#include <ruby/io/buffer.h>
#include <string.h>

#define UM_DEFAULT_STRING_READ_LEN 65536

static bool um_is_io_buffer(VALUE buffer) {
  return rb_obj_is_kind_of(buffer, rb_cIOBuffer) == Qtrue;
}

static VALUE um_io_buffer_bytes_protected(VALUE arg) {
  VALUE *args = (VALUE *)arg;
  rb_io_buffer_get_bytes_for_writing(args[0], (void **)args[1], (size_t *)args[2]);
  return Qnil;
}

static void um_buffer_type_error(VALUE buffer) {
  rb_raise(rb_eTypeError, "buffer must be a String or an IO::Buffer, not %s", rb_obj_classname(buffer));
}

size_t um_buffer_default_read_len(VALUE buffer, ssize_t offset) {
  if (RB_TYPE_P(buffer, T_STRING)) return UM_DEFAULT_STRING_READ_LEN;
  if (!um_is_io_buffer(buffer)) um_buffer_type_error(buffer);

  void *base;
  size_t size;
  rb_io_buffer_get_bytes_for_writing(buffer, &base, &size);
  if (offset < 0) offset = (ssize_t)size + offset + 1;
  if (offset < 0 || (size_t)offset > size) return 0;
  return size - (size_t)offset;
}

// Marks an IO::Buffer locked by the machine (an operation or a buffer
// registration), as opposed to one locked by its owner.
static ID id_um_locked;

// An IO::Buffer locked by its owner (not by a machine): Ruby hands the fiber
// scheduler such buffers over memory it frees only after the hook returned.
static bool um_io_buffer_owner_locked(VALUE buffer, enum rb_io_buffer_flags flags) {
  return (flags & RB_IO_BUFFER_LOCKED) && !RTEST(rb_attr_get(buffer, id_um_locked));
}

// Whether the IO::Buffer owns its memory (allocated or mapped), so that
// locking it keeps that memory where it is: a locked buffer cannot be freed,
// resized or transferred. A slice's memory belongs to its parent, and an
// external buffer's (IO::Buffer.for(string) in its block, or one made by C
// code over memory of its own) to someone else: neither can be pinned.
static bool um_io_buffer_owns_memory(enum rb_io_buffer_flags flags) {
  return flags & (RB_IO_BUFFER_INTERNAL | RB_IO_BUFFER_MAPPED);
}

// Whether reading into the buffer must go through memory of the machine's
// own (a bounce String the op keeps alive), copied in once the read
// completed: the kernel may not write into memory that could be freed
// meanwhile.
bool um_buffer_needs_bounce(VALUE buffer) {
  if (RB_TYPE_P(buffer, T_STRING)) return false;
  void *base;
  size_t size;
  enum rb_io_buffer_flags flags = rb_io_buffer_get_bytes(buffer, &base, &size);
  return !um_io_buffer_owns_memory(flags) && !um_io_buffer_owner_locked(buffer, flags);
}

// An IO::Buffer grows as a String does, when it owns its memory and
// nothing holds it fixed.
static void um_io_buffer_grow(VALUE buffer, size_t size, size_t needed, size_t maxlen, ssize_t ofs) {
  void *base;
  size_t cur;
  enum rb_io_buffer_flags flags = rb_io_buffer_get_bytes(buffer, &base, &cur);
  if ((flags & RB_IO_BUFFER_LOCKED) && !um_io_buffer_owner_locked(buffer, flags))
    rb_raise(rb_const_get(rb_cIOBuffer, rb_intern("LockedError")),
      "the buffer is in use by another operation or registered with a machine");
  // An empty (or freed) buffer gets memory of its own.
  bool null_buffer = !base && !(flags & RB_IO_BUFFER_LOCKED);
  if (!null_buffer && (!um_io_buffer_owns_memory(flags) || (flags & (RB_IO_BUFFER_EXTERNAL | RB_IO_BUFFER_FILE | RB_IO_BUFFER_LOCKED))))
    rb_raise(rb_eArgError,
      "cannot read %zu bytes at offset %zd into an IO::Buffer of %zu bytes: it cannot grow "
      "(a slice, a mapped file, an external or a locked buffer keeps its size)", maxlen, ofs, size);
  rb_io_buffer_resize(buffer, needed);
}

// An IO::Buffer grows zero-filled (a String's new capacity is not touched):
// a read asking for far more than the buffer holds grows it by at most
// this much, and reads up to there (a read may return less than asked).
// Asked for 2 GiB, the zeroing alone took seconds.
#define UM_IO_BUFFER_GROW_MAX (16 * 1024 * 1024)

// Returns where to read *maxlen bytes into the buffer at *offset (negative:
// counted from the end, -1 appends); *offset is set to the absolute offset.
// A String, or an IO::Buffer that owns its memory, grows to hold them (an
// IO::Buffer by at most UM_IO_BUFFER_GROW_MAX: *maxlen is lowered to fit).
void *um_buffer_for_read(VALUE buffer, size_t *maxlen_p, ssize_t *offset) {
  size_t maxlen = *maxlen_p;
  ssize_t ofs = *offset;
  if (RB_TYPE_P(buffer, T_STRING)) {
    long len = RSTRING_LEN(buffer);
    if (ofs < 0) ofs = len + ofs + 1;
    if (ofs < 0 || ofs > len)
      rb_raise(rb_eArgError, "buffer offset %zd is out of range for a String of %ld bytes", *offset, len);
    rb_str_modify(buffer);
    size_t needed = (size_t)ofs + maxlen;
    if (needed > (size_t)len) rb_str_modify_expand(buffer, (long)(needed - (size_t)len));
    *offset = ofs;
    return RSTRING_PTR(buffer) + ofs;
  }
  if (!um_is_io_buffer(buffer)) um_buffer_type_error(buffer);

  void *base;
  size_t size;
  rb_io_buffer_get_bytes_for_writing(buffer, &base, &size);
  if (ofs < 0) ofs = (ssize_t)size + ofs + 1;
  if (ofs < 0 || (size_t)ofs > size)
    rb_raise(rb_eArgError, "buffer offset %zd is out of range for an IO::Buffer of %zu bytes", *offset, size);
  if (maxlen > size - (size_t)ofs) {
    if (maxlen - (size - (size_t)ofs) > UM_IO_BUFFER_GROW_MAX)
      *maxlen_p = maxlen = size - (size_t)ofs + UM_IO_BUFFER_GROW_MAX;
    um_io_buffer_grow(buffer, size, (size_t)ofs + maxlen, maxlen, ofs);
    rb_io_buffer_get_bytes_for_writing(buffer, &base, &size);
  }
  *offset = ofs;
  return (char *)base + ofs;
}

// Copies what a read put in its bounce String into the IO::Buffer, which
// is checked again: one freed or resized meanwhile (or whose parent was)
// raises IO::Buffer::InvalidatedError, and those bytes are lost.
void um_buffer_bounce_in(VALUE buffer, ssize_t offset, VALUE bounce, ssize_t count) {
  if (count <= 0) return;
  void *base = NULL;
  size_t size = 0;
  int state = 0;
  VALUE args[3] = { buffer, (VALUE)&base, (VALUE)&size };
  rb_protect(um_io_buffer_bytes_protected, (VALUE)args, &state);
  if (state) rb_set_errinfo(Qnil);
  if (state || !base || (size_t)offset + (size_t)count > size)
    rb_raise(rb_const_get(rb_cIOBuffer, rb_intern("InvalidatedError")),
      "the IO::Buffer (or the buffer it is a slice of) was freed or resized during the read: "
      "%zd bytes read are lost", count);
  memcpy((char *)base + offset, RSTRING_PTR(bounce), (size_t)count);
  RB_GC_GUARD(bounce);
}

// A String ends where the data read ends.
void um_buffer_after_read(VALUE buffer, ssize_t offset, ssize_t count) {
  if (!RB_TYPE_P(buffer, T_STRING)) return;
  if (count < 0) count = 0;
  rb_str_set_len(buffer, offset + count);
}

const void *um_buffer_for_write(VALUE buffer, size_t *len) {
  if (RB_TYPE_P(buffer, T_STRING)) {
    *len = RSTRING_LEN(buffer);
    return RSTRING_PTR(buffer);
  }
  if (!um_is_io_buffer(buffer)) um_buffer_type_error(buffer);

  const void *base;
  rb_io_buffer_get_bytes_for_reading(buffer, &base, len);
  return base;
}

// Locks the IO::Buffer for the machine; raises IO::Buffer::LockedError if it
// is already locked.
VALUE um_io_buffer_lock(VALUE buffer) {
  rb_io_buffer_lock(buffer);
  rb_ivar_set(buffer, id_um_locked, Qtrue);
  return buffer;
}

void um_io_buffer_unlock(VALUE buffer) {
  rb_ivar_set(buffer, id_um_locked, Qfalse);
  rb_io_buffer_try_unlock(buffer);
}

// Guards the buffer's memory against changes from Ruby while the kernel
// uses it; returns whether it locked it (and must unlock it). A buffer in
// use by another operation of a machine (or registered) raises. An
// IO::Buffer locked by its owner is used as it is: Ruby hands the fiber
// scheduler such buffers over memory it frees only after the hook returned,
// and operations finish (or are cancelled and reaped) before that.
bool um_buffer_lock(VALUE buffer) {
  if (RB_TYPE_P(buffer, T_STRING)) {
    rb_str_locktmp(buffer);
    return true;
  }
  void *base;
  size_t size;
  if (rb_io_buffer_get_bytes(buffer, &base, &size) & RB_IO_BUFFER_LOCKED) {
    if (RTEST(rb_attr_get(buffer, id_um_locked)))
      rb_raise(rb_const_get(rb_cIOBuffer, rb_intern("LockedError")),
        "the buffer is in use by another operation or registered with a machine");
    return false;
  }
  um_io_buffer_lock(buffer);
  return true;
}

void um_buffer_unlock(VALUE buffer) {
  if (RB_TYPE_P(buffer, T_STRING)) rb_str_unlocktmp(buffer);
  else um_io_buffer_unlock(buffer);
}

// A frozen String whose memory stays put while the kernel reads it, even if
// the caller changes the original meanwhile (the original gets a copy).
// An IO::Buffer is copied into one too: its owner could free or resize it
// (or its parent) meanwhile, and the kernel would send what then lies in
// that memory. Only a buffer locked by its owner (the fiber scheduler's) is
// used as it is.
VALUE um_buffer_stable(VALUE buffer) {
  if (RB_TYPE_P(buffer, T_STRING)) return OBJ_FROZEN(buffer) ? buffer : rb_str_new_frozen(buffer);
  if (!um_is_io_buffer(buffer)) um_buffer_type_error(buffer);

  void *base;
  size_t size;
  enum rb_io_buffer_flags flags = rb_io_buffer_get_bytes(buffer, &base, &size);
  if (um_io_buffer_owner_locked(buffer, flags)) return buffer;
  return um_buffer_frozen_copy(buffer);
}

// A frozen String with the buffer's bytes (a frozen String as it is).
VALUE um_buffer_frozen_copy(VALUE buffer) {
  if (RB_TYPE_P(buffer, T_STRING)) return OBJ_FROZEN(buffer) ? buffer : rb_str_new_frozen(buffer);
  if (!um_is_io_buffer(buffer)) um_buffer_type_error(buffer);
  const void *ptr;
  size_t size;
  rb_io_buffer_get_bytes_for_reading(buffer, &ptr, &size);
  return rb_obj_freeze(rb_str_new(ptr, (long)size));
}

// An Array of stable buffers and the iovecs over them (malloc'd; the caller
// frees them). *total is set to the bytes in all of them.
struct iovec *um_iovecs_new(int argc, VALUE *argv, VALUE *buffers, size_t *total) {
  *buffers = rb_ary_new_capa(argc);
  for (int i = 0; i < argc; i++) rb_ary_push(*buffers, um_buffer_stable(argv[i]));

  struct iovec *iovecs = malloc(sizeof(struct iovec) * (size_t)(argc > 0 ? argc : 1));
  if (!iovecs) rb_raise(rb_eNoMemError, "failed to allocate iovecs");
  *total = 0;
  for (int i = 0; i < argc; i++) {
    size_t size;
    const void *ptr = um_buffer_for_write(RARRAY_AREF(*buffers, i), &size);
    iovecs[i].iov_base = (void *)ptr;
    iovecs[i].iov_len = size;
    *total += size;
  }
  return iovecs;
}

// Skips n written bytes: *first and *count then describe what is left.
void um_iovecs_advance(struct iovec **first, int *count, size_t n) {
  while (*count > 0 && n >= (*first)->iov_len) {
    n -= (*first)->iov_len;
    (*first)++;
    (*count)--;
  }
  if (*count > 0) {
    (*first)->iov_base = (char *)(*first)->iov_base + n;
    (*first)->iov_len -= n;
  }
}

void Init_um_buffer(void) {
  // No leading @: invisible to Ruby code.
  id_um_locked = rb_intern("__um_locked");
}
