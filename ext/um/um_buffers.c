// The provided-buffer pool (buffer ring, Linux 5.19). It starts small and
// doubles when the kernel runs short (a multishot op ends with ENOBUFS; the
// caller grows the pool and re-arms the op, so ENOBUFS never reaches the
// user). Buffers go back to the ring as soon as their data was consumed.
//
// Where the kernel has incremental consumption (Linux 6.12), a buffer takes
// several receives, one after the other, until it is full: each CQE's data
// starts where the previous one of that buffer ended, and the buffer goes
// back to the ring once the kernel let go of it (no IORING_CQE_F_BUF_MORE)
// and every piece of it was consumed.
#include "um.h"
#include "um_buffers.h"
#include <errno.h>
#include <sys/mman.h>

static void um_pool_add_buffers(struct um *m, unsigned count) {
  struct um_buffer_pool *pool = m->pool;
  char *chunk = malloc((size_t)count * UM_POOL_BUFFER_SIZE);
  if (!chunk) rb_raise(rb_eNoMemError, "failed to allocate %u pool buffers", count);
  pool->chunks[pool->chunk_count++] = chunk;

  int mask = io_uring_buf_ring_mask(UM_POOL_CAPACITY);
  for (unsigned i = 0; i < count; i++) {
    unsigned bid = pool->count + i;
    pool->addrs[bid] = chunk + (size_t)i * UM_POOL_BUFFER_SIZE;
    pool->in_ring[bid] = true;
    io_uring_buf_ring_add(pool->ring, pool->addrs[bid], UM_POOL_BUFFER_SIZE, (unsigned short)bid, mask, (int)i);
  }
  io_uring_buf_ring_advance(pool->ring, (int)count);
  pool->count += count;
}

// Sets the pool up on first use.
void um_pool_ensure(struct um *m) {
  if (m->pool) return;

  struct um_buffer_pool *pool = calloc(1, sizeof(struct um_buffer_pool));
  if (!pool) rb_raise(rb_eNoMemError, "failed to allocate the buffer pool");
  size_t ring_size = UM_POOL_CAPACITY * sizeof(struct io_uring_buf);
  void *ring = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring == MAP_FAILED) {
    free(pool);
    rb_sys_fail("mmap (buffer ring)");
  }
  pool->ring = ring;
  io_uring_buf_ring_init(pool->ring);

  struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)ring, .ring_entries = UM_POOL_CAPACITY, .bgid = UM_POOL_GROUP_ID };
  int ret = -EINVAL;
  if (um_kernel_version() >= 612) {
    UM_BUF_REG_FLAGS(reg) = IOU_PBUF_RING_INC;
    ret = io_uring_register_buf_ring(&m->ring, &reg, 0);
    pool->incremental = ret == 0;
  }
  if (ret == -EINVAL) {
    UM_BUF_REG_FLAGS(reg) = 0;
    ret = io_uring_register_buf_ring(&m->ring, &reg, 0);
  }
  if (ret < 0) {
    munmap(ring, ring_size);
    free(pool);
    if (ret == -EINVAL) um_require_kernel(519, "the buffer pool (provided buffer rings)");
    rb_syserr_fail(-ret, "io_uring_register_buf_ring");
  }
  m->pool = pool;
  um_pool_add_buffers(m, UM_POOL_INITIAL_BUFFERS);
}

// Doubles the pool; false when it is at capacity already.
bool um_pool_grow(struct um *m) {
  struct um_buffer_pool *pool = m->pool;
  unsigned room = UM_POOL_CAPACITY - pool->count;
  if (!room) return false;
  um_pool_add_buffers(m, pool->count < room ? pool->count : room);
  pool->grows++;
  return true;
}

// How many times the pool grew so far: taken before an op that may see
// ENOBUFS, for um_pool_grow_after.
unsigned um_pool_generation(struct um *m) {
  return m->pool ? m->pool->grows : 0;
}

// ENOBUFS seen by an op submitted at `generation`: grows the pool unless it
// grew since (every op waiting at a shortage sees it, and one growth is
// enough for it). True when the op should simply try again; false when the
// pool is at capacity.
bool um_pool_grow_after(struct um *m, unsigned generation) {
  if (m->pool->grows != generation) return true;
  if (um_pool_grow(m)) return true;
  m->pool->exhausted++;
  return false;
}

static unsigned um_pool_bid(uint32_t cqe_flags) {
  return cqe_flags >> IORING_CQE_BUFFER_SHIFT;
}

// Called once for each CQE that carries a buffer, in CQE order: returns
// where its data is.
const char *um_pool_take(struct um *m, uint32_t cqe_flags, int32_t res) {
  struct um_buffer_pool *pool = m->pool;
  unsigned bid = um_pool_bid(cqe_flags);
  const char *ptr = pool->addrs[bid] + pool->offsets[bid];
  pool->refs[bid]++;
  if (pool->incremental && (cqe_flags & IORING_CQE_F_BUF_MORE)) {
    // The kernel goes on filling this buffer after this data.
    if (res > 0) pool->offsets[bid] += (uint32_t)res;
  }
  else
    pool->in_ring[bid] = false;
  return ptr;
}

// The data of one CQE was consumed: the buffer goes back to the ring when
// nothing else uses it.
void um_pool_recycle(struct um *m, uint32_t cqe_flags) {
  if (!(cqe_flags & IORING_CQE_F_BUFFER) || !m->pool) return;

  struct um_buffer_pool *pool = m->pool;
  unsigned bid = um_pool_bid(cqe_flags);
  if (--pool->refs[bid] || pool->in_ring[bid]) return;

  pool->offsets[bid] = 0;
  pool->in_ring[bid] = true;
  io_uring_buf_ring_add(pool->ring, pool->addrs[bid], UM_POOL_BUFFER_SIZE, (unsigned short)bid,
    io_uring_buf_ring_mask(UM_POOL_CAPACITY), 0);
  io_uring_buf_ring_advance(pool->ring, 1);
}

// After the ring is gone.
void um_pool_free(struct um *m) {
  struct um_buffer_pool *pool = m->pool;
  if (!pool) return;
  munmap(pool->ring, UM_POOL_CAPACITY * sizeof(struct io_uring_buf));
  for (unsigned i = 0; i < pool->chunk_count; i++) free(pool->chunks[i]);
  free(pool);
  m->pool = NULL;
}

// Adds the pool's figures to a metrics Hash (all 0 before first use).
void um_pool_metrics(struct um *m, VALUE h) {
  struct um_buffer_pool *pool = m->pool;
  unsigned in_use = 0;
  for (unsigned bid = 0; pool && bid < pool->count; bid++)
    if (pool->refs[bid] || !pool->in_ring[bid]) in_use++;
  rb_hash_aset(h, ID2SYM(rb_intern("buffer_size")), UINT2NUM(pool ? UM_POOL_BUFFER_SIZE : 0));
  rb_hash_aset(h, ID2SYM(rb_intern("buffers")), UINT2NUM(pool ? pool->count : 0));
  rb_hash_aset(h, ID2SYM(rb_intern("buffers_in_use")), UINT2NUM(in_use));
  rb_hash_aset(h, ID2SYM(rb_intern("buffer_grows")), UINT2NUM(pool ? pool->grows : 0));
  rb_hash_aset(h, ID2SYM(rb_intern("buffer_pool_bytes")), SIZET2NUM(pool ? (size_t)pool->count * UM_POOL_BUFFER_SIZE : 0));
  rb_hash_aset(h, ID2SYM(rb_intern("buffer_capacity")), UINT2NUM(UM_POOL_CAPACITY));
  rb_hash_aset(h, ID2SYM(rb_intern("buffer_exhausted")), ULL2NUM(pool ? pool->exhausted : 0));
  rb_hash_aset(h, ID2SYM(rb_intern("buffers_incremental")), pool && pool->incremental ? Qtrue : Qfalse);
}
