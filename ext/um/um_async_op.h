// Awaiting an operation that no fiber owns (UM::AsyncOp): any number of
// fibers may wait for it at once.
#ifndef UM_ASYNC_OP_H
#define UM_ASYNC_OP_H

#include "um.h"

// The runqueue entries of the fibers awaiting one op, in arrival order.
struct um_async_waiters {
  struct um_op **items;
  unsigned count, cap;
};

VALUE um_async_op_await(struct um *m, struct um_op *op, struct um_async_waiters *waiters);
void um_async_waiters_free(struct um_async_waiters *waiters);

#endif
