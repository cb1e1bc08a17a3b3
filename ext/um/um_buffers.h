// The machine's provided-buffer pool: a buffer ring the kernel picks
// buffers from for multishot reads and receives.
#ifndef UM_BUFFERS_H
#define UM_BUFFERS_H

#include "um.h"

// Ring capacity: the pool grows up to this many buffers (16 MiB). Sized
// for many connections: a buffer is taken only when data arrives, a UM::IO
// gives small remainders back at once (um_io.c), and a reader that finds
// the pool exhausted reads into memory of its own, so 10,000 connections
// need no more than the data in flight. The size is one TLS record's
// plaintext; with incremental consumption (Linux 6.12) several receives
// share a buffer.
#define UM_POOL_CAPACITY 1024
#define UM_POOL_INITIAL_BUFFERS 16
#define UM_POOL_BUFFER_SIZE (16 * 1024)
#define UM_POOL_GROUP_ID 1

struct um_buffer_pool {
  struct io_uring_buf_ring *ring;  // mmap'd, shared with the kernel
  bool incremental;                // IOU_PBUF_RING_INC: buffers shared by several CQEs
  char *addrs[UM_POOL_CAPACITY];   // buffer memory by buffer id
  uint32_t offsets[UM_POOL_CAPACITY]; // where the next data of a buffer starts
  uint16_t refs[UM_POOL_CAPACITY];    // CQE data of a buffer not yet given back
  bool in_ring[UM_POOL_CAPACITY];     // the kernel may still use the buffer
  char *chunks[32];                // allocations, one per growth step
  unsigned chunk_count;
  unsigned count;                  // buffers in the pool
  unsigned grows;                  // times the pool grew after ENOBUFS
  uint64_t exhausted;              // ENOBUFS at capacity (a UM::IO then reads into its own memory)
};

void um_pool_ensure(struct um *m);
bool um_pool_grow(struct um *m);
unsigned um_pool_generation(struct um *m);
bool um_pool_grow_after(struct um *m, unsigned generation);
const char *um_pool_take(struct um *m, uint32_t cqe_flags, int32_t res);
void um_pool_recycle(struct um *m, uint32_t cqe_flags);
void um_pool_free(struct um *m);
void um_pool_metrics(struct um *m, VALUE h);

#endif
