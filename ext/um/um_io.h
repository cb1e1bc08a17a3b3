// UM::IO: a buffered reader/writer over an fd or a socket whose reads land
// in the machine's provided buffers and are copied at most once.
#ifndef UM_IO_H
#define UM_IO_H

#include "um.h"

enum um_io_mode { UM_IO_FD, UM_IO_SOCKET, UM_IO_SSL };

// Marks a segment of malloc'd memory (decrypted TLS data), not a pool buffer.
#define UM_IO_SEGMENT_MALLOC UINT32_MAX

// A pool buffer holding received data not yet consumed.
struct um_io_segment {
  const char *ptr;
  uint32_t len;
  uint32_t pos;
  uint32_t cqe_flags;  // carries the buffer id, for giving it back (or UM_IO_SEGMENT_MALLOC)
};

struct um_io {
  VALUE machine;
  struct um *m;        // holds a reference: the segments live in its pool
  VALUE target;        // the fd, or the OpenSSL::SSL::SSLSocket (:ssl)
  int fd;
  enum um_io_mode mode;
  struct um_io_segment *segments;
  uint32_t head, count, cap;
  size_t pending;      // bytes received, not yet consumed
  uint64_t consumed;   // bytes consumed since creation
  bool eof;
  char *ssl_chunk;     // :ssl: the segment being read into
  char *plain_chunk;   // the segment a plain read (pool exhausted) goes into
  const char *busy;    // the reading method in progress, or NULL
};

// A plain read (the pool is exhausted) asks for at most this many bytes.
#define UM_IO_PLAIN_CHUNK 16384
// After each read, a remainder this small left in pool buffers is moved to
// the UM::IO's own memory, so that a connection waiting for the rest of a
// line does not pin pool buffers (shared by every connection) meanwhile.
#define UM_IO_COMPACT_MAX 4096

bool um_io_fill(struct um_io *io);
void um_io_release_segments(struct um_io *io);
VALUE um_io_read_to_delim(struct um_io *io, const char *delim, size_t dlen, size_t limit, bool strip_cr);
VALUE um_io_read(struct um_io *io, long len);
size_t um_io_skip(struct um_io *io, size_t len);
VALUE um_io_read_each(struct um_io *io);
void um_io_clear(struct um_io *io);
VALUE um_io_exclusive(struct um_io *io, const char *name, VALUE (*body)(VALUE), VALUE arg);

// um_resp.c: the Redis protocol over a UM::IO
VALUE um_resp_read(struct um_io *io);
void um_resp_encode(VALUE str, VALUE obj);

#endif
