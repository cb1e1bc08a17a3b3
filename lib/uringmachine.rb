# frozen_string_literal: true

require "set"
require_relative "uringmachine/version"
require "um_ext"
require_relative "uringmachine/process"
require_relative "uringmachine/fiber_scheduler"
require_relative "uringmachine/ssl"
require_relative "uringmachine/file_watch"
require_relative "uringmachine/actor"

# UringMachine runs fibers over Linux io_uring: each I/O call suspends only
# the calling fiber, and the machine runs the others meanwhile. The engine is
# in C (ext/um); this file adds the fiber life cycle on top of its runqueue.
class UringMachine
  # Starts a new non-blocking fiber running the block, scheduled to start
  # with +value+. Returns the fiber. The block's value (or the exception it
  # raised) becomes the fiber's result.
  #
  # @example
  #   f = machine.spin(21) { |x| x * 2 }
  #   machine.join(f)  # => 42
  def spin(value = nil, klass = Fiber, &block)
    fiber = new_fiber(klass, block)
    schedule(fiber, value)
    fiber
  end

  # Starts a new non-blocking fiber running the block at once; the calling
  # fiber continues when it first suspends (what Fiber.schedule expects).
  # Returns the fiber.
  #
  # @example
  #   order = []
  #   machine.spin_now { order << :child }
  #   order << :parent
  #   order  # => [:child, :parent]
  def spin_now(&block)
    fiber = new_fiber(Fiber, block)
    transfer_now(fiber, nil)
    fiber
  end

  # Waits for the fibers to finish; returns the result of the one fiber, or
  # an Array of results. A fiber that ended with an exception has the
  # exception as its result. Takes fibers, Arrays (any Enumerable) of
  # fibers, and Procs, which are spun first. A fiber of another thread's
  # machine may be joined: its end wakes this machine.
  #
  # @example
  #   a = machine.spin { 1 }
  #   b = machine.spin { raise "oops" }
  #   machine.join(a)     # => 1
  #   machine.join(a, b)  # => [1, #<RuntimeError: oops>]
  def join(*fibers)
    fibers = fiber_arguments(fibers)
    wait_for_fibers(fibers)
    results = fibers.map(&:result)
    fibers.size == 1 ? results.first : results
  end

  # Waits for the fibers to finish (the arguments as for #join); returns how
  # many were waited for.
  #
  # @example
  #   fibers = 3.times.map { |i| machine.spin { machine.sleep(0.01 * i) } }
  #   machine.await(fibers)  # => 3
  def await(*fibers)
    fibers = fiber_arguments(fibers)
    wait_for_fibers(fibers)
    fibers.size
  end

  # Raises UM::Terminate in each fiber that is still running.
  #
  # @example
  #   f = machine.spin { machine.sleep(10) }
  #   machine.snooze
  #   machine.terminate(f)
  #   machine.join(f)  # => #<UringMachine::Terminate ...>
  def terminate(*fibers)
    fibers.each do |fiber|
      next if fiber.done?

      fiber.__send__(:um_terminate)
      schedule(fiber, Terminate.new)
    end
    nil
  end

  # Accepts connections on the listening socket (multishot) and pushes each
  # new fd to the UM::Queue, until the socket is shut down or closed.
  #
  # @example
  #   q = UM::Queue.new
  #   machine.spin { machine.accept_into_queue(server, q) }
  #   fd = machine.shift(q)  # the next connection
  def accept_into_queue(fd, queue)
    raise TypeError, "expected a UM::Queue, not #{queue.class}" unless queue.is_a?(UringMachine::Queue)

    accept_each(fd) { |conn| push(queue, conn) }
  end

  # A UM::IO (buffered reads and writes) on the fd; with a block, yields it
  # and returns the block's value.
  #
  # @example
  #   machine.io(fd, :socket) do |io|
  #     io.read_line  # => "GET / HTTP/1.1"
  #   end
  def io(target, mode = nil)
    io = UringMachine::IO.new(self, target, mode)
    block_given? ? yield(io) : io
  end

  # The fibers spun on this machine that have not finished yet.
  #
  # @example
  #   f = machine.spin { machine.sleep(1) }
  #   machine.fiber_set.include?(f)  # => true
  def fiber_set
    live_fibers.dup
  end

  private

  def new_fiber(klass, block)
    raise ArgumentError, "no block given" unless block
    raise TypeError, "#{klass.inspect} is not a Fiber class" unless klass.is_a?(Class) && klass <= Fiber

    fiber = klass.new(blocking: false, &fiber_body(block))
    live_fibers << fiber
    fiber
  end

  def live_fibers
    @live_fibers ||= Set.new
  end

  def run_fiber(fiber, block, start_value)
    result = begin
      # Terminated or raised into before it ever ran.
      raise Terminate if fiber.__send__(:um_terminated?)
      raise start_value if start_value.is_a?(Exception)

      block.call(start_value)
    rescue Exception => e # rubocop:disable Lint/RescueException
      e
    end
    finish_fiber(fiber, result)
  end

  # Records the result and wakes the joiners. The fiber then ends, or parks
  # (see ext/um/um_fiber.c).
  #
  # The joiners may belong to other threads' machines: marking the fiber done
  # and counting down its joins happen under JOIN_LOCK, as does a joiner's
  # check-and-register, so no end goes unseen; each joiner is scheduled on
  # its own machine, which wakes it up.
  def finish_fiber(fiber, result)
    JOIN_LOCK.synchronize do
      fiber.__send__(:um_finish, result)
      fiber.__send__(:um_take_joins)&.each do |join|
        join.remaining -= 1
        join.wake if join.remaining.zero?
      end
    end
    live_fibers.delete(fiber)
  end

  # A finished fiber that cannot end switches away for good: a fiber
  # switched to by transfer that returns would make Ruby resume another
  # fiber out of turn.
  def park_fiber
    loop { switch_away }
  end

  def switch_away
    switch
  rescue Exception => e # rubocop:disable Lint/RescueException
    # An interrupt that arrived while this finished fiber was the one
    # waiting in the kernel goes to the fiber that created the machine.
    schedule(main_fiber, e) if main_fiber&.alive?
  end

  # A fiber waiting in #join / #await for +remaining+ fibers to end.
  Join = Struct.new(:fiber, :remaining, :machine) do
    def wake
      machine.schedule(fiber, nil)
    rescue UringMachine::Error
      nil # its machine was closed meanwhile: nobody to wake
    end
  end
  JOIN_LOCK = Thread::Mutex.new
  private_constant :Join, :JOIN_LOCK

  # Fibers, Procs (spun here) and Enumerables of them, flattened.
  def fiber_arguments(args, list = [])
    args.each do |arg|
      case arg
      when Fiber then list << arg
      when Proc then list << spin { arg.call }
      when Enumerable then fiber_arguments(arg, list)
      else raise TypeError, "expected a Fiber, a Proc or an Enumerable of them, not #{arg.class}"
      end
    end
    list
  end

  def wait_for_fibers(fibers)
    pending = fibers.uniq
    join = Join.new(Fiber.current, 0, self)
    JOIN_LOCK.synchronize do
      pending.reject!(&:done?)
      pending.each { |f| f.__send__(:um_add_join, join) }
      join.remaining = pending.size
    end
    return if pending.empty?

    begin
      self.yield until join.remaining.zero?
    ensure
      JOIN_LOCK.synchronize { pending.each { |f| f.__send__(:um_remove_join, join) } }
    end
  end
end

UM = UringMachine unless defined?(UM)

class Fiber
  # Whether the fiber finished (for a fiber spun by a machine: its block
  # returned or raised).
  def done?
    @um_done || !alive?
  end

  # The fiber's mailbox, a UM::Queue created on first use: other fibers (of
  # any thread) push messages to it, the fiber takes them with
  # machine.shift(Fiber.current.mailbox).
  def mailbox
    @um_mailbox ||= UringMachine::Queue.new
  end

  # The value the fiber's block returned, or the exception it raised; nil
  # while it runs.
  def result
    @um_result
  end

  private

  def um_finish(result)
    @um_result = result
    @um_done = true
  end

  def um_take_joins
    joins = @um_joins
    @um_joins = nil
    joins
  end

  def um_terminate
    @um_terminated = true
  end

  def um_terminated? = @um_terminated

  def um_add_join(join)
    (@um_joins ||= []) << join
  end

  def um_remove_join(join)
    @um_joins&.delete(join)
  end
end
