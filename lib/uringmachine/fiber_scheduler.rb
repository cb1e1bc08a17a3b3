# frozen_string_literal: true

require "socket"
require_relative "worker_pool"

class UringMachine
  # Ruby's Fiber::Scheduler on a machine: inside Fiber.schedule { }, code that
  # uses IO, Socket, Queue, Mutex, sleep, Process.wait, Timeout.timeout or
  # DNS lookups runs its waits and I/O on io_uring, unchanged.
  #
  #   Fiber.set_scheduler(UM::FiberScheduler.new)
  #   Fiber.schedule { URI.open("http://example.com").read }
  #
  # The fibers run when the thread's main fiber blocks or ends: the
  # scheduler is closed at thread exit, which runs every fiber to its end.
  # See docs/fiber_scheduler.md.
  class FiberScheduler
    # The value #unblock resumes a blocked fiber with.
    UNBLOCKED = Object.new.freeze

    # Internal: raised by a timer into the fiber whose wait it limits.
    class TimedOut < Exception; end # rubocop:disable Lint/InheritException

    IO_WAIT_EVENTS = ::IO::READABLE | ::IO::PRIORITY | ::IO::WRITABLE
    POLL_FAILED = POLLERR | POLLHUP | POLLNVAL
    private_constant :UNBLOCKED, :TimedOut, :IO_WAIT_EVENTS, :POLL_FAILED

    # Ruby 4.1 ("version 4" of IO::Buffer's hooks) passes the buffer offset
    # before the length, and the length becomes a maximum for one transfer.
    BUFFERED_IO_VERSION = defined?(::IO::Buffer::VERSION) && ::IO::Buffer::VERSION >= 3 ? 4 : 3

    # A scheduler running its fibers and I/O on +machine+ (by default a new
    # machine). In a forked child it goes on with a fresh machine.
    #
    # @example
    #   Fiber.set_scheduler(UM::FiberScheduler.new)
    #   Fiber.schedule { sleep 0.1 }
    def initialize(machine = (@owns_machine = true) && UringMachine.new)
      raise TypeError, "expected a UringMachine, not #{machine.class}" unless machine.is_a?(UringMachine)

      @machine = machine
      @closed = false
    end

    # The machine the scheduler runs on (a fresh one in a forked child: the
    # parent's ring is not usable there).
    #
    # @example
    #   scheduler = UM::FiberScheduler.new(machine)
    #   scheduler.machine  # => machine
    def machine
      @machine = UringMachine.new if @machine.forked?
      @machine
    end

    # Fiber.schedule: starts a non-blocking fiber running the block at once;
    # the caller goes on when that fiber first waits. An exception that ends
    # the fiber is reported on $stderr (as for a Thread) and becomes the
    # fiber's #result.
    #
    # @example
    #   Fiber.set_scheduler(UM::FiberScheduler.new)
    #   Fiber.schedule { puts "in a fiber" }  # calls #fiber
    def fiber(&block)
      scheduler = self
      machine.spin_now do
        # Fiber#raise finds the scheduler of the fiber it raises into here.
        Fiber.current.instance_variable_set(:@um_scheduler, scheduler)
        block.call
      rescue Exception => e # rubocop:disable Lint/RescueException
        report(e) unless e.is_a?(Terminate)
        raise
      end
    end

    # Suspends the current fiber until #unblock or until +timeout+ seconds
    # have passed. Returns true when unblocked, false on timeout. An
    # #unblock that came while the fiber was not blocked (a subclass that
    # lets other fibers run before calling super) is kept for this call,
    # which then returns true at once.
    #
    # @example
    #   q = Thread::Queue.new
    #   Fiber.schedule { q.pop }  # #block: only this fiber waits
    #   Fiber.schedule { q << 1 }  # #unblock
    def block(_blocker, timeout = nil)
      fiber = Fiber.current
      return true if enter_block(fiber)

      wait_for_unblock(fiber, timeout)
    end

    # Resumes a fiber suspended by #block; for a fiber not in #block, makes
    # its next #block return at once. May be called from any thread.
    #
    # @example
    #   m = Thread::Mutex.new
    #   Fiber.schedule { m.synchronize { sleep 0.1 } }
    #   Fiber.schedule { m.synchronize { } }  # blocked, then unblocked
    def unblock(_blocker, fiber)
      # Claiming the fiber (one step, in C) tells a timeout that fired
      # meanwhile that a wakeup is on its way.
      machine.schedule(fiber, UNBLOCKED) if claim_or_token(fiber)
      nil
    end

    # Kernel#sleep, Mutex#sleep, ConditionVariable#wait: suspends the fiber
    # for +duration+ seconds (nil: until woken). Ruby wakes such a sleep with
    # #unblock (ConditionVariable#signal does), so this is a #block.
    #
    # @example
    #   Fiber.schedule { sleep 0.1 }  # only this fiber sleeps
    def kernel_sleep(duration = nil)
      duration&.zero? ? machine.snooze : block(:sleep, duration)
      nil
    end

    # Ruby 4.0: lets the other fibers run, then goes on.
    #
    # @example
    #   Fiber.schedule { Fiber.scheduler.yield }
    def yield
      machine.snooze
      nil
    end

    # Waits until the IO is ready for some of the +events+ (IO::READABLE,
    # IO::PRIORITY, IO::WRITABLE); returns those ready, or false when the
    # timeout passed first. A nil timeout is the IO's own (IO#timeout):
    # when that passes, IO::TimeoutError is raised, as Ruby does.
    #
    # @example
    #   r, w = IO.pipe
    #   Fiber.schedule { r.wait_readable }  # #io_wait on the machine
    #   Fiber.schedule { w << "x" }
    def io_wait(io, events, timeout = nil)
      return io_wait_blocking(io, events, timeout) unless machine_thread?(machine)

      fd = io.fileno
      mask = events & IO_WAIT_EVENTS
      io_timeout = timeout.nil? && io.timeout
      revents = waiting_on(io) { with_timeout(timeout || io_timeout) { machine.poll(fd, mask) } }
      if revents.equal?(TimedOut)
        raise ::IO::TimeoutError, "Blocking operation timed out!" if io_timeout

        return false
      end

      # A hung-up or failed fd is ready for everything: the next read or
      # write reports what happened.
      revents.anybits?(POLL_FAILED) ? mask : (revents & mask)
    end

    # IO.select on IOs (or objects with #to_io). Returns [r, w, e] of the
    # ready ones, or nil when the timeout passed first.
    # Each set is nil or an Array (anything else raises TypeError, as
    # IO.select does; Ruby calls the hook before checking).
    #
    # @example
    #   Fiber.schedule { IO.select([r], nil, nil, 1) }  # => [[r], [], []]
    def io_select(readables, writables = nil, exceptables = nil, timeout = nil)
      sets = [readables, writables, exceptables].map do |set|
        next [] if set.nil?
        raise TypeError, "wrong argument type #{set.class} (expected Array)" unless set.is_a?(Array)

        set
      end
      buffered = sets[0].select { |io| read_buffered?(io) }
      return [buffered, [], []] unless buffered.empty?

      fds = sets.map { |set| set.map { |io| fileno_of(io) } }
      ready = with_timeout(timeout) { machine.select(*fds) }
      return nil if ready.nil? || ready.equal?(TimedOut)

      sets.zip(fds, ready).map do |set, set_fds, ready_fds|
        set.select.with_index { |_, i| ready_fds.include?(set_fds[i]) }
      end
    end

    # Process.wait and friends: waits (only this fiber) for a child and
    # returns its Process::Status.
    #
    # @example
    #   Fiber.schedule do
    #     pid = spawn("true")
    #     Process.wait(pid)  # #process_wait: only this fiber waits
    #   end
    def process_wait(pid, flags)
      return Fiber.blocking { Process::Status.wait(pid, flags) } if flags.anybits?(Process::WNOHANG)

      options = WEXITED
      options |= WSTOPPED if flags.anybits?(Process::WUNTRACED)
      idtype, id =
        if pid.positive? then [P_PID, pid]
        elsif pid == -1 then [P_ALL, 0]
        elsif pid.zero? then [P_PGID, 0]
        else [P_PGID, -pid]
        end
      machine.waitid_status(idtype, id, options)
    end

    # DNS for Socket, TCPSocket, Addrinfo... : getaddrinfo on a worker
    # thread. Returns the addresses as Strings ([] when there is none).
    #
    # @example
    #   Fiber.schedule { Addrinfo.getaddrinfo("localhost", 80) }
    def address_resolve(hostname)
      host = hostname.sub(/%.*\z/, "")
      run_blocking do
        Addrinfo.getaddrinfo(host, nil, nil, :STREAM).map(&:ip_address).uniq
      rescue SocketError
        []
      end
    end

    # Timeout.timeout: raises exception_class.new(*args) in the block's fiber
    # if it runs longer than +duration+ seconds.
    #
    # @example
    #   Fiber.schedule do
    #     Timeout.timeout(0.1) { sleep 1 }  # raises Timeout::Error
    #   end
    def timeout_after(duration, exception_class, *args, &block)
      machine.timeout(duration, exception_class.new(*args), &block)
    end

    # Runs +work+ (C code that releases the GVL) on the process's worker
    # threads; only the calling fiber waits. The work's memory belongs to
    # the caller, so this waits for the work to end even when interrupted;
    # the interruption is raised afterwards.
    #
    # @example
    #   Fiber.schedule { Zlib.deflate("x" * 10_000_000) }  # runs on the worker pool
    def blocking_operation_wait(work)
      run_blocking(&work)
      nil
    end

    # Ruby 4.0: raises +exception+ in a fiber that waits on an IO being
    # closed. May be called from any thread.
    #
    # @example
    #   r, w = IO.pipe
    #   Fiber.schedule { r.read rescue IOError }
    #   Fiber.schedule { r.close }  # the reader gets IOError
    def fiber_interrupt(fiber, exception)
      machine.schedule(fiber, exception)
      nil
    end

    # Ruby 4.0: closes the fd. Returns true, or -errno. Refuses (UM::Error)
    # stdin, stdout, stderr and the fds Ruby keeps for itself (its timer
    # thread's): closing one of those aborts the VM. Ruby itself never asks:
    # it keeps fds 0 to 2 open and no IO can wrap a reserved fd.
    #
    # @example
    #   Fiber.schedule { File.open("/tmp/x", "w").close }  # on Ruby 4.0, closes on the ring
    def io_close(fd)
      raise Error, "fd #{fd} is reserved by Ruby (stdio or the VM's own); it is not closed" if reserved_fd?(fd)

      machine.close(fd)
      true
    rescue SystemCallError => e
      -e.errno
    end

    # Runs every fiber to its end, then closes the machine if the scheduler
    # made it (its ring and fds go now, not at GC; a machine passed in stays
    # the caller's, and one with operations still pending waits for the GC).
    # Called by Ruby at thread exit and when the scheduler is replaced; later
    # calls return at once.
    #
    # @example
    #   Fiber.set_scheduler(UM::FiberScheduler.new)
    #   Fiber.schedule { sleep 0.1 }
    #   Fiber.set_scheduler(nil)  # calls #scheduler_close: the fiber finishes first
    def scheduler_close
      return if @closed

      run
      close_own_machine if @owns_machine
      @closed = true
      nil
    end
    # Ruby's name for #scheduler_close (called at thread exit).
    #
    # @example
    #   scheduler = UM::FiberScheduler.new
    #   scheduler.close
    #   scheduler.closed?  # => true
    alias close scheduler_close

    def close_own_machine
      @machine.close
    rescue UringMachine::Error
      nil
    end
    private :close_own_machine

    # Whether #scheduler_close has finished.
    #
    # @example
    #   scheduler.closed?  # => false until closed
    def closed?
      @closed
    end

    # Runs the machine until every fiber started by the scheduler is done.
    #
    # @example
    #   scheduler = UM::FiberScheduler.new
    #   Fiber.set_scheduler(scheduler)
    #   Fiber.schedule { sleep 0.1 }
    #   scheduler.run  # returns when the fiber is done
    def run
      until (fibers = machine.fiber_set).empty?
        machine.await(*fibers)
      end
      nil
    end
    # UringMachine 1.0's name for #run.
    #
    # @example
    #   scheduler.join  # the same as #run
    alias join run

    # Buffered I/O hooks of Ruby 3.1 to 4.0: +length+ is the least to
    # transfer (0: one attempt, answering -EAGAIN on a non-blocking fd that
    # is not ready, after which Ruby calls #io_wait), +offset+ the position
    # in the buffer. Return bytes transferred or -errno.
    module BufferedIOv3
      # IO#read, #readpartial, #gets...: reads at least +length+ bytes from the
      # IO into +buffer+ at +offset+; returns the bytes read or -errno.
      #
      # @example
      #   # Ruby calls it for IO#read / #readpartial in a scheduled fiber:
      #   r, w = IO.pipe
      #   Fiber.schedule { r.readpartial(10) }  # => io_read(r, buffer, 0, 0)
      def io_read(io, buffer, length, offset = 0)
        buffered_io(io, :read, buffer, length, offset, -1)
      end

      # IO#write: writes at least +length+ bytes of +buffer+ from +offset+;
      # returns the bytes written or -errno.
      #
      # @example
      #   r, w = IO.pipe
      #   Fiber.schedule { w.write("hello") }  # => io_write(w, buffer, 5, 0)
      def io_write(io, buffer, length, offset = 0)
        buffered_io(io, :write, buffer, length, offset, -1)
      end

      # IO#pread, IO::Buffer#pread: like #io_read at the file position +from+.
      #
      # @example
      #   File.open("/etc/hostname") do |f|
      #     Fiber.schedule { f.pread(4, 0) }  # => io_pread(f, buffer, 0, 4, 0)
      #   end
      def io_pread(io, buffer, from, length, offset = 0)
        buffered_io(io, :read, buffer, length, offset, from)
      end

      # IO::Buffer#pwrite: like #io_write at the file position +from+.
      #
      # @example
      #   buffer = IO::Buffer.for(+"data")
      #   Fiber.schedule { buffer.pwrite(file, 0) }  # => io_pwrite(file, buffer, 0, 4, 0)
      def io_pwrite(io, buffer, from, length, offset = 0)
        buffered_io(io, :write, buffer, length, offset, from)
      end
    end

    # Buffered I/O hooks of Ruby 4.1 ("version 4"): offset first, +length+
    # the most to transfer, one attempt.
    module BufferedIOv4
      # Reads at most +length+ bytes into +buffer+ at +offset+, one attempt;
      # returns the bytes read or -errno.
      #
      # @example
      #   # Ruby 4.1 calls it for IO#read / #readpartial in a scheduled fiber:
      #   Fiber.schedule { r.readpartial(10) }  # => io_read(r, buffer, 0, 10)
      def io_read(io, buffer, offset, length)
        buffered_io(io, :read, buffer.slice(0, offset + length), 0, offset, -1)
      end

      # Writes at most +length+ bytes of +buffer+ from +offset+, one attempt;
      # returns the bytes written or -errno.
      #
      # @example
      #   Fiber.schedule { w.write("hello") }  # => io_write(w, buffer, 0, 5)
      def io_write(io, buffer, offset, length)
        buffered_io(io, :write, buffer.slice(0, offset + length), 0, offset, -1)
      end

      # Like #io_read at the file position +from+.
      #
      # @example
      #   Fiber.schedule { f.pread(4, 0) }  # => io_pread(f, buffer, 0, 0, 4)
      def io_pread(io, buffer, from, offset, length)
        buffered_io(io, :read, buffer.slice(0, offset + length), 0, offset, from)
      end

      # Like #io_write at the file position +from+.
      #
      # @example
      #   Fiber.schedule { buffer.pwrite(file, 0) }  # => io_pwrite(file, buffer, 0, 0, 4)
      def io_pwrite(io, buffer, from, offset, length)
        buffered_io(io, :write, buffer.slice(0, offset + length), 0, offset, from)
      end
    end

    include(BUFFERED_IO_VERSION == 4 ? BufferedIOv4 : BufferedIOv3)

    # Blocking work handed to the worker pool; it wakes the waiting fiber
    # through the scheduler when done.
    class BlockingJob
      attr_reader :fiber, :result, :error

      def initialize(work, scheduler, fiber)
        @work = work
        @scheduler = scheduler
        @fiber = fiber
        @done = false
      end

      def done? = @done

      def call
        @result = @work.call
      rescue Exception => e # rubocop:disable Lint/RescueException
        @error = e
      ensure
        @done = true
        # Not #unblock: a job that ends while its fiber is not waiting must
        # leave no token for the fiber's next #block.
        @scheduler.__send__(:wake_job_fiber, @fiber)
      end
    end
    private_constant :BlockingJob

    private

    # IO.copy_stream runs on a worker thread (#blocking_operation_wait), and
    # Ruby calls #io_wait from there when the copy has to wait: that thread
    # waits by itself, with the GVL released.
    def io_wait_blocking(io, events, timeout)
      sets = [::IO::READABLE, ::IO::WRITABLE, ::IO::PRIORITY].map { |event| events.anybits?(event) ? [io] : nil }
      ready = ::IO.select(*sets, timeout)
      return false unless ready

      [::IO::READABLE, ::IO::WRITABLE, ::IO::PRIORITY].each_with_index.sum do |event, i|
        ready[i].empty? ? 0 : event
      end
    end

    def fileno_of(io)
      ::IO.try_convert(io)&.fileno or raise TypeError, "no implicit conversion of #{io.class} into IO"
    end

    def report(error)
      warn "#{Fiber.current.inspect} terminated with exception:\n" \
           "#{error.full_message(highlight: false)}"
    end

    # Runs the block on the process's worker threads, suspending only the
    # calling fiber; returns its value or raises its exception.
    def run_blocking(&block)
      job = BlockingJob.new(block, self, Fiber.current)
      wait_for_job(job)
      raise job.error if job.error

      job.result
    end

    def wake_job_fiber(fiber)
      machine.schedule(fiber, UNBLOCKED) if claim_blocked(fiber)
    end

    def wait_for_job(job)
      fiber = job.fiber
      mark_blocked(fiber)
      WorkerPool.shared.submit(job)
      interrupt = nil
      loop do
        begin
          wait_for_unblock(fiber, nil)
        rescue Exception => e # rubocop:disable Lint/RescueException
          interrupt ||= e
        end
        break if job.done?

        # Interrupted or woken by someone else: wait again, unless the job
        # ended between the check and the claim.
        mark_blocked(fiber)
        break if job.done? && claim_blocked(fiber)
      end
      raise interrupt if interrupt
    end

    # Suspends until #unblock resumes the fiber (true), the timeout passes
    # (false), or the fiber is resumed otherwise (false, or the exception).
    # However it ends, no wakeup from #unblock is left on the runqueue to
    # resume the fiber later at the wrong place.
    def wait_for_unblock(fiber, timeout)
      value = nil
      begin
        value = with_timeout(timeout) { machine.yield }
      ensure
        # The entry is gone although no wakeup came: #unblock claimed the
        # fiber and its wakeup is still queued. Take it now.
        unless value.equal?(UNBLOCKED) || claim_blocked(fiber)
          take_wakeup
          value = UNBLOCKED
        end
      end
      value.equal?(UNBLOCKED)
    end

    def take_wakeup
      interrupt = nil
      loop do
        value = begin
          machine.yield
        rescue Exception => e # rubocop:disable Lint/RescueException
          interrupt ||= e
        end
        break if value.equal?(UNBLOCKED)
      end
      raise interrupt if interrupt
    end

    # The block's value, or TimedOut when +seconds+ passed first (nil: no
    # limit).
    def with_timeout(seconds)
      return yield if seconds.nil?

      marker = TimedOut.new
      machine.timeout(seconds, marker) { yield }
    rescue TimedOut => e
      raise unless e.equal?(marker)

      TimedOut
    end

    # One buffered I/O hook, bounded by the IO's timeout (IO#timeout).
    def buffered_io(io, direction, buffer, length, offset, from)
      fd = io.fileno
      seconds = io.timeout
      return transfer(machine, direction, fd, buffer, length, offset, from, io, NOTE_IO_WAITS) if seconds.nil?

      machine.timeout(seconds, ::IO::TimeoutError.new("Blocking operation timed out!")) do
        transfer(machine, direction, fd, buffer, length, offset, from, io, NOTE_IO_WAITS)
      end
    end

    # Ruby 3.4 does not tell the scheduler when an IO its fibers wait on is
    # closed (threads get IOError from the close): the hooks note which IO
    # each fiber waits on, and IO#close (CloseInterruptsFibers) interrupts
    # them. Ruby 4.0 does this itself, through #fiber_interrupt.
    # (#transfer notes a read or write that has to wait itself.)
    NOTE_IO_WAITS = RUBY_VERSION < "3.5"
    private_constant :NOTE_IO_WAITS

    if NOTE_IO_WAITS
      def waiting_on(io)
        fiber = Fiber.current
        FiberScheduler.__send__(:waiting_on, io, fiber)
        begin
          yield
        ensure
          FiberScheduler.__send__(:done_waiting_on, io, fiber)
        end
      end
    else
      def waiting_on(_io) = yield
    end

    # Fiber#raise into +fiber+, a fiber of this scheduler: see
    # FiberRaiseOnMachine. Returns nil, or the raise as Ruby would do it
    # (:super) when the caller is not a fiber of this machine.
    def raise_into(fiber, args)
      current = Fiber.current
      m = machine
      return :super unless machine_thread?(m) && fiber.alive? && !fiber.equal?(current)
      return :super unless current.instance_variable_get(:@um_scheduler).equal?(self) ||
                           current.equal?(m.__send__(:main_fiber))

      raise_now(m, fiber, args)
      nil
    end

    # IO#close from any thread: raises IOError in the fibers waiting on the
    # IO, and returns once they left their hooks (their operations are done
    # or cancelled), so that Ruby frees the IO's buffers and closes the fd
    # only then, as it does for threads.
    def self.interrupt_waiters(io)
      interrupted = {}.compare_by_identity
      pauses = 0
      until (fibers = waiters_on(io)).empty?
        fibers.each do |fiber|
          next if interrupted[fiber]

          interrupted[fiber] = true
          scheduler = fiber.instance_variable_get(:@um_scheduler)
          scheduler&.fiber_interrupt(fiber, IOError.new("stream closed in another thread"))
        end
        pause_for_close(fibers, pauses += 1)
      end
    end

    # Lets the interrupted fibers run: waiters on the caller's thread run on
    # their machine (the caller may be the thread's main fiber, for which
    # Ruby would not call the scheduler); waiters on other threads run there.
    def self.pause_for_close(fibers, count)
      machine = fibers.each do |fiber|
        m = fiber.instance_variable_get(:@um_scheduler)&.machine
        break m if m && machine_thread?(m)
      end
      if machine.is_a?(UringMachine)
        count == 1 ? machine.snooze : machine.sleep(0.001)
      else
        sleep(0.001)
      end
    end
    private_class_method :interrupt_waiters, :pause_for_close
  end

  # Ruby 3.4's IO#pwrite calls the scheduler's io_pwrite hook from a region
  # where the GVL is released (IO#pread calls io_pread before entering one):
  # the hook's Ruby code then runs without the GVL and corrupts the VM (seen
  # as a later IO#close spinning forever). So with a scheduler, pwrite runs
  # as it does without one: a plain pwrite(2), which does not wait on a
  # regular file and fails with ESPIPE on a pipe or a socket. IO::Buffer#pwrite
  # still goes to the hook, safely.
  module PwriteWithoutScheduler
    def pwrite(object, offset)
      Fiber.blocking { super }
    end
  end
  ::IO.prepend(PwriteWithoutScheduler) if RUBY_VERSION < "3.5"

  # Ruby 3.4: IO#close wakes the fibers waiting on the IO in a
  # UM::FiberScheduler's hooks with IOError, as it wakes threads.
  module CloseInterruptsFibers
    def close
      FiberScheduler.__send__(:interrupt_waiters, self)
      super
    end
  end

  # The waits noted in the parent are not the child's.
  module ForgetIOWaitersOnFork
    def _fork
      pid = super
      FiberScheduler.__send__(:forget_waiters) if pid.zero?
      pid
    end
  end

  if RUBY_VERSION < "3.5"
    ::IO.prepend(CloseInterruptsFibers)
    ::Process.singleton_class.prepend(ForgetIOWaitersOnFork)
  end

  # Fiber#raise into a fiber waiting on a UM::FiberScheduler: Ruby transfers
  # to that fiber, and the caller, not on the machine's runqueue, would
  # never run again. Here the caller is put next on the runqueue.
  module FiberRaiseOnMachine
    def raise(*args, **kwargs)
      scheduler = instance_variable_get(:@um_scheduler)
      # Keywords (Ruby 4.0's cause:) go to Ruby's own Fiber#raise.
      return super if scheduler.nil? || !kwargs.empty?

      result = scheduler.__send__(:raise_into, self, args)
      result == :super ? super : result
    end
  end
  ::Fiber.prepend(FiberRaiseOnMachine)
end
