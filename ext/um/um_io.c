// UM::IO engine. Each fill is one read or recv with buffer selection: the
// kernel picks a pool buffer, which becomes a segment; segments go back to
// the pool as soon as they are consumed. Data is copied once, from the pool
// buffer into the String returned (read_each copies nothing). In :ssl mode
// a fill is one SSL_read of decrypted data into a malloc'd segment.
//
// Memory under many connections: an idle UM::IO holds no pool buffer (the
// kernel picks one only when data arrives), a small remainder left after a
// read moves out of the pool (um_io_compact), and when the pool is at its
// capacity a fill is a plain read into malloc'd memory instead: no data is
// lost and no reader fails for want of pool buffers.
//
// One read at a time: every reading method runs through um_io_exclusive,
// which refuses a second one while the first is in progress (inside a
// read_each block, or from another fiber while the first waits for data).
#include "um.h"
#include "um_buffers.h"
#include "um_io.h"
#include "um_ssl.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <ruby/io/buffer.h>

// Gives the segment's memory back (to the pool, or to malloc).
static void um_io_segment_release(struct um *m, const char *ptr, uint32_t cqe_flags) {
  if (cqe_flags == UM_IO_SEGMENT_MALLOC) free((void *)ptr);
  else um_pool_recycle(m, cqe_flags);
}

// Releases every segment (when the UM::IO is freed).
void um_io_release_segments(struct um_io *io) {
  for (uint32_t i = io->head; i < io->count; i++)
    um_io_segment_release(io->m, io->segments[i].ptr, io->segments[i].cqe_flags);
  io->head = io->count = 0;
}

static void um_io_push_segment(struct um_io *io, const char *ptr, uint32_t len, uint32_t cqe_flags) {
  if (io->head == io->count) io->head = io->count = 0;
  if (io->count == io->cap && io->head) {
    // Consumed slots at the front are reused rather than growing the array.
    memmove(io->segments, io->segments + io->head, (io->count - io->head) * sizeof(struct um_io_segment));
    io->count -= io->head;
    io->head = 0;
  }
  if (io->count == io->cap) {
    uint32_t cap = io->cap ? io->cap * 2 : 8;
    struct um_io_segment *segments = realloc(io->segments, cap * sizeof(struct um_io_segment));
    if (!segments) {
      um_io_segment_release(io->m, ptr, cqe_flags);
      rb_raise(rb_eNoMemError, "failed to grow UM::IO segments");
    }
    io->segments = segments;
    io->cap = cap;
  }
  io->segments[io->count++] = (struct um_io_segment){ .ptr = ptr, .len = len, .pos = 0, .cqe_flags = cqe_flags };
  io->pending += len;
}

// Keeps what a read into the malloc'd chunk returned as a segment, shrunk
// to its length; 0 is EOF.
static bool um_io_keep_chunk(struct um_io *io, char *ptr, long len) {
  if (len == 0) {
    free(ptr);
    io->eof = true;
    return false;
  }
  char *small = realloc(ptr, (size_t)len);
  um_io_push_segment(io, small ? small : ptr, (uint32_t)len, UM_IO_SEGMENT_MALLOC);
  return true;
}

// The largest TLS record's plaintext: one SSL_read returns at most this.
#define UM_IO_SSL_CHUNK 16384

static VALUE um_io_ssl_read_protected(VALUE arg) {
  struct um_io *io = (struct um_io *)arg;
  return um_ssl_read_raw(io->machine, io->target, io->ssl_chunk, UM_IO_SSL_CHUNK);
}

// The chunk is freed if the read raises (io->ssl_chunk points at it only
// while it is read into).
static bool um_io_fill_ssl(struct um_io *io) {
  char *ptr = malloc(UM_IO_SSL_CHUNK);
  if (!ptr) rb_raise(rb_eNoMemError, "failed to allocate a UM::IO segment");
  int state = 0;
  VALUE ret;
  io->ssl_chunk = ptr;
  do {
    ret = rb_protect(um_io_ssl_read_protected, (VALUE)io, &state);
    // A wake that is not an exception is ignored, as in the other modes.
  } while (!state && !FIXNUM_P(ret));
  io->ssl_chunk = NULL;
  if (state) {
    free(ptr);
    rb_jump_tag(state);
  }
  return um_io_keep_chunk(io, ptr, FIX2LONG(ret));
}

static VALUE um_io_plain_read_protected(VALUE arg) {
  struct um_io *io = (struct um_io *)arg;
  int32_t res = 0;
  enum um_op_kind kind = io->mode == UM_IO_SOCKET ? OP_RECV : OP_READ;
  // A wake that is not an exception (which um_transfer_raw raises) is ignored.
  while (um_transfer_raw(io->m, kind, io->fd, io->plain_chunk, UM_IO_PLAIN_CHUNK, false, &res) != Qundef);
  um_raise_on_error(res, kind == OP_RECV ? "recv" : "read");
  return INT2FIX(res);
}

// The pool is exhausted: waits until the fd is readable (holding no memory
// meanwhile), then reads into a malloc'd segment of the UM::IO's own. The
// kernel writes into that memory: um_transfer_raw returns only after the
// read completed or its cancellation did, so freeing it afterwards is safe.
static bool um_io_fill_plain(struct um_io *io) {
  while (um_wait_ready(io->m, io->fd, POLLIN) != Qundef);
  char *ptr = malloc(UM_IO_PLAIN_CHUNK);
  if (!ptr) rb_raise(rb_eNoMemError, "failed to allocate a UM::IO segment");
  int state = 0;
  io->plain_chunk = ptr;
  VALUE ret = rb_protect(um_io_plain_read_protected, (VALUE)io, &state);
  io->plain_chunk = NULL;
  if (state) {
    free(ptr);
    rb_jump_tag(state);
  }
  return um_io_keep_chunk(io, ptr, FIX2LONG(ret));
}

// Receives one more chunk; false at EOF.
bool um_io_fill(struct um_io *io) {
  struct um *m = io->m;
  if (io->eof) return false;
  if (io->mode == UM_IO_SSL) return um_io_fill_ssl(io);
  um_pool_ensure(m);
  while (true) {
    enum um_op_kind kind = io->mode == UM_IO_SOCKET ? OP_RECV : OP_READ;
    unsigned generation = um_pool_generation(m);
    struct um_op *op = um_op_new(m, kind, 0);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    if (kind == OP_RECV)
      io_uring_prep_recv(sqe, io->fd, NULL, UM_POOL_BUFFER_SIZE, 0);
    else
      io_uring_prep_read(sqe, io->fd, NULL, UM_POOL_BUFFER_SIZE, (uint64_t)-1);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UM_POOL_GROUP_ID;

    // A wake that is not an exception (which um_op_run raises) is ignored.
    if (um_op_run(m, op) != Qundef) continue;
    int32_t res = op->res;
    uint32_t flags = op->cqe_flags;
    const char *ptr = op->buf_ptr;
    um_op_release(m, op);

    if (res == -ENOBUFS) {
      // Every reader waiting meanwhile sees the same shortage: the pool
      // grows once for it, not once per reader.
      if (um_pool_grow_after(m, generation)) continue;
      return um_io_fill_plain(io);
    }
    if (res == -EAGAIN) {
      um_poll(m, io->fd, POLLIN);
      continue;
    }
    um_raise_on_error(res, kind == OP_RECV ? "recv" : "read");
    if (res == 0) {
      um_pool_recycle(m, flags);
      io->eof = true;
      return false;
    }
    um_io_push_segment(io, ptr, (uint32_t)res, flags);
    return true;
  }
}

// Consumes n pending bytes, copying them to dest when given.
static void um_io_consume(struct um_io *io, char *dest, size_t n) {
  io->pending -= n;
  io->consumed += n;
  while (n > 0) {
    struct um_io_segment *seg = &io->segments[io->head];
    size_t avail = seg->len - seg->pos;
    size_t take = n < avail ? n : avail;
    if (dest) {
      memcpy(dest, seg->ptr + seg->pos, take);
      dest += take;
    }
    seg->pos += take;
    n -= take;
    if (seg->pos == seg->len) {
      um_io_segment_release(io->m, seg->ptr, seg->cqe_flags);
      io->head++;
    }
  }
}

static VALUE um_io_take(struct um_io *io, size_t n) {
  VALUE str = rb_str_buf_new((long)n);
  um_io_consume(io, RSTRING_PTR(str), n);
  rb_str_set_len(str, (long)n);
  return str;
}

static unsigned char um_io_byte_at(struct um_io *io, size_t offset) {
  for (uint32_t i = io->head; i < io->count; i++) {
    struct um_io_segment *seg = &io->segments[i];
    size_t avail = seg->len - seg->pos;
    if (offset < avail) return (unsigned char)seg->ptr[seg->pos + offset];
    offset -= avail;
  }
  return 0;
}

// Offset of the delimiter in the pending data from offset `from`, or -1.
static long um_io_find(struct um_io *io, const char *delim, size_t dlen, size_t from) {
  size_t base = 0;
  for (uint32_t i = io->head; i < io->count; i++) {
    struct um_io_segment *seg = &io->segments[i];
    size_t avail = seg->len - seg->pos;
    size_t start = from > base ? from - base : 0;
    const char *p = seg->ptr + seg->pos;
    while (start < avail) {
      const char *hit = memchr(p + start, delim[0], avail - start);
      if (!hit) break;
      size_t at = base + (size_t)(hit - p);
      if (at + dlen > io->pending) return -1; // may complete with more data
      size_t k = 1;
      while (k < dlen && um_io_byte_at(io, at + k) == (unsigned char)delim[k]) k++;
      if (k == dlen) return (long)at;
      start = (size_t)(hit - p) + 1;
    }
    base += avail;
  }
  return -1;
}

// Data up to the delimiter (which is consumed, not returned). nil, with
// the data left in place, when no delimiter ends within the first `limit`
// bytes (the delimiter counted; 0: no limit) or before EOF.
VALUE um_io_read_to_delim(struct um_io *io, const char *delim, size_t dlen, size_t limit, bool strip_cr) {
  size_t searched = 0;
  while (true) {
    long at = um_io_find(io, delim, dlen, searched);
    if (at >= 0) {
      if (limit && (size_t)at + dlen > limit) return Qnil;
      VALUE str = um_io_take(io, (size_t)at);
      um_io_consume(io, NULL, dlen);
      if (strip_cr && RSTRING_LEN(str) && RSTRING_PTR(str)[RSTRING_LEN(str) - 1] == '\r')
        rb_str_set_len(str, RSTRING_LEN(str) - 1);
      return str;
    }
    if (limit && io->pending >= limit) return Qnil;
    searched = io->pending >= dlen ? io->pending - dlen + 1 : 0;
    if (!um_io_fill(io)) return Qnil;
  }
}

// len > 0: exactly len bytes (nil, the data left in place, at EOF before
// that many); 0: whatever is buffered, waiting for some when there is none
// (nil at EOF); len < 0: the same, up to -len bytes.
VALUE um_io_read(struct um_io *io, long len) {
  if (len <= 0) {
    if (!io->pending && !um_io_fill(io)) return Qnil;
    // Negated as unsigned: -len overflows for LONG_MIN.
    size_t most = (size_t)0 - (size_t)len;
    size_t n = len == 0 || most > io->pending ? io->pending : most;
    return um_io_take(io, n);
  }
  while (io->pending < (size_t)len)
    if (!um_io_fill(io)) return Qnil;
  return um_io_take(io, (size_t)len);
}

// Skips len bytes (fewer at EOF); returns how many.
size_t um_io_skip(struct um_io *io, size_t len) {
  while (io->pending < len && um_io_fill(io));
  size_t n = len < io->pending ? len : io->pending;
  um_io_consume(io, NULL, n);
  return n;
}

struct um_io_view {
  struct um_io *io;
  VALUE buffer;
};

static VALUE um_io_yield_view(VALUE arg) {
  return rb_yield(((struct um_io_view *)arg)->buffer);
}

// The view must not outlive the block: its memory goes back to the pool.
static VALUE um_io_release_view(VALUE arg) {
  struct um_io_view *view = (struct um_io_view *)arg;
  rb_io_buffer_free(view->buffer);
  struct um_io_segment *seg = &view->io->segments[view->io->head];
  um_io_consume(view->io, NULL, seg->len - seg->pos);
  return Qnil;
}

// Calls the block with a read-only IO::Buffer view of each chunk, pending
// data first, until EOF.
VALUE um_io_read_each(struct um_io *io) {
  while (io->pending || um_io_fill(io)) {
    struct um_io_segment *seg = &io->segments[io->head];
    struct um_io_view view = { .io = io };
    view.buffer = rb_io_buffer_new((void *)(seg->ptr + seg->pos), seg->len - seg->pos,
      RB_IO_BUFFER_EXTERNAL | RB_IO_BUFFER_READONLY);
    rb_ensure(um_io_yield_view, (VALUE)&view, um_io_release_view, (VALUE)&view);
    RB_GC_GUARD(view.buffer);
  }
  return Qnil;
}

// Drops the buffered data (its buffers go back to the pool).
void um_io_clear(struct um_io *io) {
  uint64_t consumed = io->consumed;
  um_io_consume(io, NULL, io->pending);
  io->consumed = consumed;
}

// Moves a small remainder held in pool buffers into one malloc'd segment
// and gives the pool buffers back. Nothing is done when memory is short:
// the data then simply stays where it is.
static void um_io_compact(struct um_io *io) {
  if (!io->pending || io->pending > UM_IO_COMPACT_MAX) return;
  bool pooled = false;
  for (uint32_t i = io->head; i < io->count; i++)
    if (io->segments[i].cqe_flags != UM_IO_SEGMENT_MALLOC) pooled = true;
  if (!pooled) return;
  char *ptr = malloc(io->pending);
  if (!ptr) return;
  uint32_t len = (uint32_t)io->pending;
  uint64_t consumed = io->consumed;
  um_io_consume(io, ptr, len);
  io->consumed = consumed;
  um_io_push_segment(io, ptr, len, UM_IO_SEGMENT_MALLOC);
}

struct um_io_call {
  struct um_io *io;
  VALUE (*body)(VALUE);
  VALUE arg;
};

static VALUE um_io_call_body(VALUE arg) {
  struct um_io_call *call = (struct um_io_call *)arg;
  return call->body(call->arg);
}

static VALUE um_io_call_done(VALUE arg) {
  struct um_io_call *call = (struct um_io_call *)arg;
  call->io->busy = NULL;
  um_io_compact(call->io);
  return Qnil;
}

// Runs a reading method: one at a time per UM::IO. A second one, called
// from the block of read_each or from another fiber while the first waits
// for data, raises UM::Error instead of touching the segments the first
// one is using.
VALUE um_io_exclusive(struct um_io *io, const char *name, VALUE (*body)(VALUE), VALUE arg) {
  if (io->busy)
    rb_raise(eUMError, "UM::IO#%s called while UM::IO#%s is in progress (in its block or another fiber): "
      "a UM::IO takes one read at a time", name, io->busy);
  io->busy = name;
  struct um_io_call call = { .io = io, .body = body, .arg = arg };
  return rb_ensure(um_io_call_body, (VALUE)&call, um_io_call_done, (VALUE)&call);
}
