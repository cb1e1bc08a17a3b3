# frozen_string_literal: true

require_relative "scheduler_helper"

# The scheduler's own hooks: fibers, blocking and waking, time, processes,
# DNS, blocking work, fork, and the hooks only newer Rubies call.
class FiberSchedulerTest < SchedulerTestCase
  def test_new_checks_its_machine
    assert_raises(TypeError) { UM::FiberScheduler.new(:machine) }
    assert_instance_of UM, UM::FiberScheduler.new.machine
    assert_same @machine, UM::FiberScheduler.new(@machine).machine
  end

  def test_fiber_starts_at_once
    order = []
    recorder = with_scheduler do
      fiber = Fiber.schedule { order << 1; sleep 0.01; order << 3 }
      order << 2
      refute fiber.blocking?
    end
    assert_equal [1, 2, 3], order
    assert_equal 1, recorder.count(:fiber)
    assert_equal 1, recorder.count(:kernel_sleep)
    assert_equal 1, recorder.count(:scheduler_close)
  end

  def test_nested_fibers_and_close_runs_them_all
    done = []
    with_scheduler do
      3.times do |i|
        Fiber.schedule do
          Fiber.schedule { sleep 0.01 * i; done << [:inner, i] }
          sleep 0.005
          done << [:outer, i]
        end
      end
      assert_empty done
    end
    assert_equal 6, done.size
    assert_equal [0, 1, 2], done.select { |kind, _| kind == :inner }.map(&:last).sort
  end

  def test_fiber_exception_is_reported_and_kept
    fiber = nil
    _, err = capture_io do
      with_scheduler { fiber = Fiber.schedule { raise ArgumentError, "boom" } }
    end
    assert_match(/terminated with exception/, err)
    assert_match(/boom \(ArgumentError\)/, err)
    assert_kind_of ArgumentError, fiber.result
  end

  def test_close_is_idempotent
    scheduler = UM::FiberScheduler.new(@machine)
    Fiber.set_scheduler(scheduler)
    Fiber.schedule { sleep 0.001 }
    Fiber.set_scheduler(nil)
    assert scheduler.closed?
    assert_nil scheduler.close
    assert_empty @machine.fiber_set
  end

  def test_io_select_refuses_non_ios
    error = scheduled { assert_raises(TypeError) { IO.select([Object.new], nil, nil, 0) } }
    assert_match(/into IO/, error.message)
    assert_hooks :io_select
  end

  def test_kernel_sleep
    slept = scheduled do
      t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      sleep 0.02
      sleep 0
      Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    end
    assert_operator slept, :>=, 0.02
    assert_equal [[0.02], [0]], @recorder.args(:kernel_sleep)
  end

  def test_sleep_forever_until_woken
    woken = nil
    with_scheduler do
      sleeper = Fiber.schedule { sleep; woken = true }
      Fiber.schedule { Fiber.scheduler.machine.schedule(sleeper, nil) }
    end
    assert woken
  end

  def test_mutex_between_fibers
    mutex = Mutex.new
    log = []
    recorder = with_scheduler do
      2.times do |i|
        Fiber.schedule do
          mutex.synchronize do
            log << [:in, i]
            sleep 0.005
            log << [:out, i]
          end
        end
      end
    end
    assert_equal [[:in, 0], [:out, 0], [:in, 1], [:out, 1]], log
    assert_hooks :block, :unblock, recorder: recorder
  end

  def test_queue_pop_with_timeout
    queue = Queue.new
    results = scheduled do
      Fiber.schedule { sleep 0.02; queue << :late }
      first = queue.pop(timeout: 0.005)
      second = queue.pop(timeout: 1)
      [first, second]
    end
    assert_equal [nil, :late], results
    assert_includes @recorder.args(:block).map(&:last), 0.005
    assert_hooks :block, :unblock
  end

  def test_sized_queue_push_with_timeout
    queue = SizedQueue.new(1)
    results = scheduled do
      queue << 1
      full = queue.push(2, timeout: 0.005)
      Fiber.schedule { sleep 0.01; queue.pop }
      room = queue.push(3, timeout: 1)
      [full, room, queue.pop]
    end
    assert_nil results[0]
    assert_same queue, results[1] # pushed: push returns the queue
    assert_equal 3, results[2]
    assert_hooks :block, :unblock
  end

  def test_condition_variable
    mutex = Mutex.new
    cv = ConditionVariable.new
    woken = []
    with_scheduler do
      3.times do |i|
        Fiber.schedule { mutex.synchronize { cv.wait(mutex); woken << i } }
      end
      Fiber.schedule do
        mutex.synchronize { cv.signal }
        sleep 0.005
        mutex.synchronize { cv.broadcast }
      end
    end
    assert_equal [0, 1, 2], woken.sort
  end

  def test_condition_variable_wait_timeout
    mutex = Mutex.new
    cv = ConditionVariable.new
    elapsed = scheduled do
      t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      mutex.synchronize { cv.wait(mutex, 0.01) }
      Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    end
    assert_operator elapsed, :>=, 0.01
    assert_hooks :kernel_sleep # Mutex#sleep
  end

  def test_thread_join_unblocks_from_other_thread
    value = scheduled do
      thread = Thread.new { sleep 0.01; 42 }
      thread.value
    end
    assert_equal 42, value
    assert_hooks :block, :unblock
  end

  def test_queue_fed_by_another_thread
    queue = Queue.new
    items = scheduled do
      feeder = Thread.new { 5.times { |i| sleep 0.001; queue << i } }
      got = Array.new(5) { queue.pop }
      feeder.join
      got
    end
    assert_equal [0, 1, 2, 3, 4], items
  end

  # A timeout and an unblock that both happen before the fiber runs again:
  # the fiber must be resumed once, not twice.
  def test_block_timeout_racing_unblock
    queue = Queue.new
    results = scheduled do
      50.times.map do
        Fiber.schedule { queue << :x }
        queue.pop(timeout: 0)
      end
    end
    assert_equal 50, results.size
    assert_empty @machine.fiber_set
  end

  def test_block_and_unblock_directly
    scheduler = UM::FiberScheduler.new(@machine)
    results = []
    with_scheduler(scheduler) do
      waiter = Fiber.schedule { results << scheduler.block(:blocker, nil) }
      Fiber.schedule { results << scheduler.block(:blocker, 0.001) }
      Fiber.schedule { scheduler.unblock(:blocker, waiter) }
      # An unblock for a fiber that is not blocked does nothing.
      Fiber.schedule { scheduler.unblock(:blocker, Fiber.current) }
    end
    assert_equal [true, false], results
  end

  def test_timeout_timeout
    result = scheduled do
      Timeout.timeout(0.01) { sleep 1 }
    rescue Timeout::Error => e
      e
    end
    assert_kind_of Timeout::Error, result
    assert_equal "execution expired", result.message
    assert_hooks :timeout_after
    assert_equal 0.01, @recorder.args(:timeout_after).first.first
  end

  def test_timeout_timeout_with_class_and_no_expiry
    value = scheduled do
      error = assert_raises(ArgumentError) { Timeout.timeout(0.01, ArgumentError, "slow") { sleep 1 } }
      [error.message, Timeout.timeout(1) { :fast }]
    end
    assert_equal ["slow", :fast], value
  end

  def test_process_wait
    status = scheduled do
      pid = spawn("exit 3")
      Process.wait(pid)
      $?
    end
    assert_kind_of Process::Status, status
    assert_equal 3, status.exitstatus
    assert_hooks :process_wait
  end

  def test_process_wait2_any_child_and_nohang
    results = scheduled do
      pid = spawn("sleep 0.01")
      none = Process.wait(pid, Process::WNOHANG)
      waited, status = Process.wait2(-1)
      [none, waited == pid, status.success?]
    end
    assert_equal [nil, true, true], results
  end

  def test_process_wait_no_child
    error = scheduled { assert_raises(Errno::ECHILD) { Process.wait } }
    assert_kind_of Errno::ECHILD, error
  end

  def test_system_backticks_and_popen
    results = scheduled do
      sys = system("exit 0")
      failed = system("exit 4")
      exit_status = $?.exitstatus
      out = `echo hello`
      popen = IO.popen(["cat"], "r+") { |io| io.write("ping"); io.close_write; io.read }
      [sys, failed, exit_status, out, popen, $?.success?]
    end
    assert_equal [true, false, 4, "hello\n", "ping", true], results
    assert_hooks :process_wait, :io_read
  end

  # The children wait for bytes that only a fiber writes after every child
  # was started: that fiber runs only if waiting for a child suspends just
  # the waiting fiber. (A watchdog thread frees the children if it does not.)
  def test_processes_wait_concurrently
    r, w = io_pipe
    released_by = nil
    watchdog = Thread.new { sleep 5; released_by ||= :watchdog; w.write("x\ny\nz\n") }
    results = scheduled do
      waiters = 3.times.map do
        # sh's read takes one line, a byte at a time, from a pipe
        Fiber.schedule { system("sh", "-c", "read -r line", in: r) }
      end
      released_by ||= :fiber
      w.write("x\ny\nz\n")
      Fiber.scheduler.machine.join(*waiters)
    end
    watchdog.kill
    assert_equal :fiber, released_by
    assert_equal [true, true, true], results
    assert_equal 3, @recorder.count(:process_wait)
  end

  def test_address_resolve
    addresses = scheduled { Addrinfo.getaddrinfo("localhost", 80, nil, :STREAM).map(&:ip_address).uniq }
    assert_includes addresses, "127.0.0.1"
    assert_hooks :address_resolve
    assert_equal [["localhost"]], @recorder.args(:address_resolve)
  end

  def test_address_resolve_strips_interface
    scheduler = UM::FiberScheduler.new(@machine)
    result = nil
    with_scheduler(scheduler) { Fiber.schedule { result = scheduler.address_resolve("::1%lo") } }
    assert_equal ["::1"], result
  end

  def test_address_resolve_unknown_host
    error = scheduled do
      Addrinfo.getaddrinfo("no-such-host.invalid", 80)
    rescue SocketError => e
      e
    end
    assert_kind_of SocketError, error
    assert_hooks :address_resolve
  end

  def test_blocking_operation_wait_from_ruby
    copied = scheduled do
      size = 2 * 1024 * 1024 # Ruby offloads copies of 1 MiB and more
      source = IO::Buffer.new(size)
      source.set_string("x" * 16, size - 16)
      target = IO::Buffer.new(size)
      target.copy(source)
      target.get_string(size - 16)
    end
    assert_equal "x" * 16, copied
    assert_hooks :blocking_operation_wait
  end

  def test_blocking_operation_wait_runs_on_a_worker_thread
    scheduler = UM::FiberScheduler.new(@machine)
    threads = []
    ticks = 0
    with_scheduler(scheduler) do
      Fiber.schedule do
        scheduler.blocking_operation_wait(-> { sleep 0.02; threads << Thread.current })
      end
      Fiber.schedule { 5.times { sleep 0.001; ticks += 1 } }
    end
    refute_equal Thread.current, threads.first
    assert_equal "um-worker", threads.first.name
    # The other fiber ran while the work was going on.
    assert_equal 5, ticks
  end

  def test_blocking_operation_wait_raises_the_work_error
    scheduler = UM::FiberScheduler.new(@machine)
    error = nil
    with_scheduler(scheduler) do
      Fiber.schedule do
        scheduler.blocking_operation_wait(-> { raise IOError, "in work" })
      rescue IOError => e
        error = e
      end
    end
    assert_equal "in work", error.message
  end

  # Interrupting the waiting fiber must not let it return while the work
  # (whose memory the caller owns) still runs.
  def test_blocking_operation_wait_defers_interrupts
    scheduler = UM::FiberScheduler.new(@machine)
    finished = false
    error = nil
    gate = Thread::Queue.new # the work ends only after the interruption
    with_scheduler(scheduler) do
      waiter = Fiber.schedule do
        scheduler.blocking_operation_wait(-> { gate.pop; finished = true })
      rescue RuntimeError => e
        error = [e.message, finished]
      end
      Fiber.schedule do
        scheduler.machine.schedule(waiter, RuntimeError.new("stop"))
        sleep 0.01
        gate << :go
      end
    end
    assert_equal ["stop", true], error
  end

  def test_worker_pool
    pool = UM::WorkerPool.shared
    assert_same pool, UM::WorkerPool.shared
    assert_equal Etc.nprocessors, pool.size
    assert_raises(ArgumentError) { UM::WorkerPool.new(0) }

    done = Thread::Queue.new
    own = UM::WorkerPool.new(2)
    4.times { |i| own.submit(-> { done << i }) }
    assert_equal [0, 1, 2, 3], Array.new(4) { done.pop }.sort
    assert_operator own.thread_count, :<=, 2
  end

  def test_fork_child_uses_a_fresh_machine
    r, w = io_pipe
    parent_machine = nil
    results = scheduled do
      parent_machine = Fiber.scheduler.machine
      pid = fork do
        r.close
        scheduler = Fiber.scheduler
        reader, writer = IO.pipe
        Fiber.schedule { writer.write("from child fiber"); writer.close }
        message = reader.read
        pool_ok = IO::Buffer.new(2 * 1024 * 1024).copy(IO::Buffer.new(2 * 1024 * 1024)) # worker pool in the child
        w.write([message, scheduler.machine.equal?(parent_machine), pool_ok].inspect)
        w.close
        exit!(0)
      end
      w.close
      report = r.read
      _, status = Process.wait2(pid)
      [report, status.success?]
    end
    assert_equal [["from child fiber", false, 2 * 1024 * 1024].inspect, true], results
    refute parent_machine.forked?
  end

  def test_scheduler_in_another_thread
    value = Thread.new do
      machine = UM.new
      Fiber.set_scheduler(UM::FiberScheduler.new(machine))
      result = []
      Fiber.schedule { sleep 0.001; result << :a }
      Fiber.schedule { result << :b }
      Fiber.set_scheduler(nil)
      result
    end.value
    assert_equal [:b, :a], value
  end

  # Hooks that only Ruby 4.0 and later call are called here the way that
  # Ruby would.

  def test_yield_hook
    scheduler = UM::FiberScheduler.new(@machine)
    order = []
    with_scheduler(scheduler) do
      Fiber.schedule { order << 1; scheduler.yield; order << 3 }
      Fiber.schedule { order << 2 }
    end
    assert_equal [1, 2, 3], order
  end

  def test_fiber_interrupt_hook
    scheduler = UM::FiberScheduler.new(@machine)
    r, w = io_pipe
    error = nil
    with_scheduler(scheduler) do
      reader = Fiber.schedule do
        r.read(1)
      rescue IOError => e
        error = e
      end
      Thread.new { scheduler.fiber_interrupt(reader, IOError.new("stream closed in another thread")) }.join
    end
    assert_equal "stream closed in another thread", error.message
    w.write("x")
    assert_equal "x", r.read_nonblock(1) # the cancelled read took nothing
  end

  def test_io_close_hook
    scheduler = UM::FiberScheduler.new(@machine)
    r, w = UM.pipe
    results = []
    with_scheduler(scheduler) do
      Fiber.schedule do
        results << scheduler.io_close(r)
        results << scheduler.io_close(r)
      end
    end
    assert_equal [true, -Errno::EBADF::Errno], results
    @machine.close(w)
  end

  def test_buffered_io_contract_detection
    expected = defined?(IO::Buffer::VERSION) && IO::Buffer::VERSION >= 3 ? 4 : 3
    assert_equal expected, UM::FiberScheduler::BUFFERED_IO_VERSION
    hooks = expected == 4 ? UM::FiberScheduler::BufferedIOv4 : UM::FiberScheduler::BufferedIOv3
    assert_includes UM::FiberScheduler.ancestors, hooks
  end

  # The Ruby 4.1 contract: (io, buffer, offset, length), length a maximum.
  # Only the hooks are called: Ruby 3.4's own I/O would use the old order.
  def test_buffered_io_v4_hooks
    scheduler_class = Class.new(UM::FiberScheduler) { include UM::FiberScheduler::BufferedIOv4 }
    scheduler = scheduler_class.new(@machine)
    r, w = io_pipe
    results = []
    with_scheduler(scheduler) do
      Fiber.schedule do
        out = IO::Buffer.for(+"..hello world")
        results << scheduler.io_write(w, out, 2, 5)
        buffer = IO::Buffer.new(16)
        results << scheduler.io_read(r, buffer, 3, 4)
        results << buffer.get_string(3, 4)
        Dir.mktmpdir do |dir|
          File.open(File.join(dir, "f"), "w+") do |f|
            results << scheduler.io_pwrite(f, IO::Buffer.for(+"abcdef"), 10, 1, 3)
            results << scheduler.io_pread(f, buffer, 10, 0, 16)
            results << buffer.get_string(0, 3)
          end
        end
      end
    end
    assert_equal [5, 4, "hell", 3, 3, "bcd"], results
  end

  def test_join_runs_every_fiber
    scheduler = UM::FiberScheduler.new(@machine)
    done = []
    Fiber.set_scheduler(scheduler)
    Fiber.schedule { sleep 0.005; done << 1 }
    Fiber.schedule { sleep 0.001; done << 2 }
    assert_nil scheduler.join
    assert_equal [2, 1], done
    refute scheduler.closed? # join only runs; close still comes
  ensure
    Fiber.set_scheduler(nil)
  end

  # Fiber#raise transfers to the target: the calling fiber must get to run
  # again when the target next waits (it is not on the runqueue otherwise).
  def test_fiber_raise_on_fiber_waiting_in_mutex_lock
    log = in_scheduler_thread do
      mutex = Mutex.new
      log = []
      Fiber.schedule { mutex.synchronize { sleep 0.02 } }
      waiter = Fiber.schedule do
        mutex.lock
        log << :locked
      rescue RuntimeError => e
        log << [e.message, mutex.owned?]
      end
      Fiber.schedule do
        waiter.raise(RuntimeError, "stop")
        log << :caller_resumed
      end
      log
    end
    assert_equal [["stop", false], :caller_resumed], log
  end

  def test_fiber_raise_on_fiber_waiting_in_condition_variable
    log = in_scheduler_thread do
      mutex = Mutex.new
      cv = ConditionVariable.new
      log = []
      waiter = Fiber.schedule do
        mutex.synchronize { cv.wait(mutex) }
      rescue RuntimeError => e
        log << [e.message, mutex.owned?]
      end
      Fiber.schedule do
        waiter.raise("stop")
        log << :caller_resumed
      end
      log
    end
    assert_equal [["stop", false], :caller_resumed], log
  end

  # As in Ruby's own test: the thread's main (blocking) fiber raises into a
  # waiting fiber, then the thread ends.
  def test_fiber_raise_from_the_main_fiber
    log = in_scheduler_thread do
      log = []
      queue = Queue.new
      waiter = Fiber.schedule do
        queue.pop
      rescue ArgumentError => e
        log << e.message
      end
      waiter.raise(ArgumentError, "from main")
      log << :main_resumed
      log
    end
    assert_equal ["from main", :main_resumed], log
  end

  def test_fiber_raise_on_sleeping_fiber_and_with_an_exception_object
    log = in_scheduler_thread do
      log = []
      waiter = Fiber.schedule do
        sleep
      rescue IOError => e
        log << e.message
        sleep 0.001
        log << :waiter_done
      end
      Fiber.schedule do
        waiter.raise(IOError.new("object"))
        log << :caller_resumed
        log << begin
          Fiber.current.raise(FiberError, "self")
        rescue FiberError => e
          e.message
        end
        log << begin
          waiter.raise(42)
        rescue TypeError => e
          e.message
        end
      end
      log
    end
    assert_equal ["object", :caller_resumed, "self", "exception class/object expected", :waiter_done], log
  end

  # A subclass whose #block lets other fibers run before calling super: the
  # #unblock that comes meanwhile is kept, and the block returns at once.
  def test_unblock_before_block_is_not_lost
    yielding = Class.new(UM::FiberScheduler) do
      def block(blocker, timeout = nil)
        machine.snooze
        super
      end
    end
    log = []
    thread = Thread.new do
      Thread.current.report_on_exception = false
      Fiber.set_scheduler(yielding.new)
      mutex = Mutex.new
      # The holder unlocks while the second fiber is in the subclass's
      # snooze, before it reached super.
      Fiber.schedule { mutex.synchronize { Fiber.scheduler.yield } }
      Fiber.schedule { mutex.synchronize { log << :second } }
      Fiber.set_scheduler(nil)
    end
    assert thread.join(5), "the fiber waiting for the Mutex was never woken"
    assert_equal [:second], log
  ensure
    thread&.kill
  end

  def test_unblock_before_block_directly
    results = in_scheduler_thread do |scheduler|
      results = []
      Fiber.schedule do
        scheduler.unblock(:blocker, Fiber.current)
        results << scheduler.block(:blocker, nil) # returns at once
        results << scheduler.block(:blocker, 0.005) # the token was used up
      end
      results
    end
    assert_equal [true, false], results
  end

  def test_io_select_refuses_a_bare_io
    r, w = io_pipe
    w.write("x")
    errors = in_scheduler_thread do
      errors = []
      Fiber.schedule do
        errors << assert_raises(TypeError) { IO.select(r) }.message
        errors << assert_raises(TypeError) { IO.select([r], w) }.message
        errors << assert_raises(TypeError) { Fiber.scheduler.io_select([r], nil, r, 0) }.message
      end
      errors
    end
    assert_equal ["wrong argument type IO (expected Array)"] * 3, errors
    assert_equal "x", r.read_nonblock(1) # nothing was read
  end

  # In a child: a regression would close the test process's stdio.
  def test_io_close_refuses_stdio_fds
    status = in_child do
      scheduler = UM::FiberScheduler.new
      [0, 1, 2].all? do |fd|
        scheduler.io_close(fd)
        false
      rescue UM::Error => e
        e.message.include?("reserved") && File.exist?("/proc/self/fd/#{fd}")
      end
    end
    assert status.success?, "child: #{status.inspect}"
  end

  # Ruby's timer thread keeps fds (pipes or an eventfd) that no IO may wrap;
  # closing one aborts the VM, so the test runs in a child.
  def test_io_close_refuses_fds_ruby_reserves
    Thread.new {}.join # the timer thread and its fds exist once a thread ran
    reserved = Dir.children("/proc/self/fd").map(&:to_i).select do |fd|
      IO.for_fd(fd, autoclose: false)
      false
    rescue ArgumentError => e
      e.message.include?("reserve")
    rescue SystemCallError
      false
    end
    skip "this Ruby reserves no fd" if reserved.empty?

    status = in_child do
      scheduler = UM::FiberScheduler.new
      reserved.all? do |fd|
        scheduler.io_close(fd)
        false
      rescue UM::Error
        File.exist?("/proc/self/fd/#{fd}")
      end && Thread.new { sleep 0.001; true }.value
    end
    assert status.success?, "child: #{status.inspect}"
  end
end
