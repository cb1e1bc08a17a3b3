// Futex-based synchronisation: UM::Mutex and UM::Queue.
#ifndef UM_SYNC_H
#define UM_SYNC_H

#include "um.h"

struct um_mutex {
  uint32_t state;  // the futex word
  VALUE owner;     // fiber holding the lock, or nil
};

struct um_queue {
  uint32_t seq;      // the futex word: bumped on every push
  uint32_t waiters;  // fibers waiting for an item, on any machine
  VALUE items;       // Array
};

bool um_mutex_trylock(struct um_mutex *mutex);
void um_mutex_lock(struct um *m, struct um_mutex *mutex, VALUE obj);
bool um_mutex_unlock(struct um_mutex *mutex);
void um_mutex_wake(struct um *m, struct um_mutex *mutex, VALUE obj);
VALUE um_queue_push(struct um *m, struct um_queue *queue, VALUE obj, VALUE value);
VALUE um_queue_unshift(struct um *m, struct um_queue *queue, VALUE obj, VALUE value);
VALUE um_queue_take(struct um *m, struct um_queue *queue, VALUE obj, bool from_tail);

#endif
