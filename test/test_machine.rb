# frozen_string_literal: true

require_relative "helper"

class MachineTest < UMTestCase
  def test_alias
    assert_same UringMachine, UM
  end

  def test_new_default_size
    assert_equal 4096, @machine.size
    refute @machine.sqpoll_mode?
  end

  def test_new_positional_and_keyword_size
    assert_equal 64, UM.new(64).size
    assert_equal 128, UM.new(size: 128).size
  end

  # The ring's memory is the kernel's; the GC is told about it, and
  # ObjectSpace counts it, so a machine's size is not just its struct.
  def test_ring_memory_is_reported
    require "objspace"
    small = UM.new(64)
    large = UM.new(4096)
    ring = ->(size) { size * (64 + 4) + size * 4 * 16 }
    assert_operator ObjectSpace.memsize_of(small), :>=, ring.(small.size)
    assert_operator ObjectSpace.memsize_of(large) - ObjectSpace.memsize_of(small), :>=, ring.(large.size) - ring.(small.size)
    GC.disable # a GC in between would reset the counter
    before = GC.stat(:malloc_increase_bytes)
    UM.new(4096)
    assert_operator GC.stat(:malloc_increase_bytes) - before, :>=, ring.(4096)
  ensure
    GC.enable
  end

  def test_new_bad_arguments
    assert_raises(TypeError) { UM.new("64") }
    assert_raises(TypeError) { UM.new(1.5) }
    assert_raises(ArgumentError) { UM.new(0) }
    assert_raises(ArgumentError) { UM.new(-1) }
    assert_raises(ArgumentError) { UM.new(1 << 20) }
    assert_raises(ArgumentError) { UM.new(64, size: 64) }
    assert_raises(ArgumentError) { UM.new(foo: 1) }
    assert_raises(ArgumentError) { UM.new(1, 2) }
    assert_raises(TypeError) { UM.new(sqpoll: "yes") }
    assert_raises(ArgumentError) { UM.new(sqpoll: -1) }
  end

  def test_sqpoll
    m = UM.new(size: 64, sqpoll: true)
    assert m.sqpoll_mode?
    r, w = pipe
    m.write(w, "sqpoll")
    buf = +""
    assert_equal 6, m.read(r, buf, 10)
    assert_equal "sqpoll", buf

    m2 = UM.new(size: 64, sqpoll: 0.01)
    assert m2.sqpoll_mode?
    assert_in_delta 0.01, m2.sleep(0.01), 0.05
  end

  # More operations than the SQ holds: it is flushed, never an error.
  def test_full_sq_is_flushed
    m = UM.new(4)
    r, w = pipe
    readers = 50.times.map { m.spin { m.read(r, +"", 1) } }
    sleepers = 50.times.map { |i| m.spin { m.sleep(0.001); i } }
    m.snooze
    m.write(w, "x" * 50)
    assert_equal 50.times.to_a, m.join(*sleepers)
    assert_equal [1] * 50, m.join(*readers)
  end

  def test_double_initialize
    assert_raises(UM::Error) { @machine.__send__(:initialize) }
  end

  def test_uninitialized
    m = UM.allocate
    e = assert_raises(UM::Error) { m.snooze }
    assert_match(/not initialized/, e.message)
  end

  def test_error_classes
    assert_operator UM::Error, :<, StandardError
    assert_operator UM::Terminate, :<, Exception
    refute_operator UM::Terminate, :<, StandardError
  end

  def test_kernel_version
    v = UM.kernel_version
    release = File.read("/proc/sys/kernel/osrelease")
    major, minor = release.split(".").map(&:to_i)
    assert_equal major * 100 + minor, v
  end

  def test_submit
    r, _w = pipe
    f = @machine.spin { @machine.read(r, +"", 1) }
    @machine.snooze # f prepares its read
    assert_equal 1, @machine.metrics[:ops_unsubmitted]
    assert_equal 1, @machine.submit
    assert_equal 0, @machine.metrics[:ops_unsubmitted]
    @machine.terminate(f)
    @machine.join(f)
  end

  def test_metrics
    m = @machine.metrics
    %i[size total_ops total_switches total_waits ops_pending ops_unsubmitted ops_runqueue
       ops_free ops_transient].each do |key|
      assert_kind_of Integer, m[key], key.to_s
    end
    assert_equal 0, m[:ops_pending]
    @machine.sleep(0.001)
    m2 = @machine.metrics
    assert_equal 1, m2[:total_ops]
    assert_operator m2[:total_waits], :>=, 1
    assert_equal 0, m2[:ops_pending]
  end

  def test_metrics_pending_and_runqueue
    r, _w = pipe
    fibers = 3.times.map { @machine.spin { @machine.read(r, +"", 1) } }
    assert_equal 3, @machine.metrics[:ops_runqueue]
    @machine.snooze
    m = @machine.metrics
    assert_equal 3, m[:ops_pending]
    assert_equal 0, m[:ops_runqueue]
    @machine.terminate(*fibers)
    @machine.join(*fibers)
    assert_no_pending_ops
  end

  def test_wrong_thread
    e = Thread.new { assert_raises(UM::Error) { @machine.snooze } }.value
    assert_match(/another thread/, e.message)
    assert_raises(UM::Error) { Thread.new { @machine.read(0, +"", 1) }.tap { _1.report_on_exception = false }.join }
    assert_raises(UM::Error) { Thread.new { @machine.metrics }.tap { _1.report_on_exception = false }.join }
  end

  def test_wakeup_from_another_thread
    @machine.sleep(0.001) # arms the machine's wakeup read
    t = Thread.new do
      sleep 0.05
      @machine.wakeup
    end
    waits = @machine.metrics[:total_waits]
    @machine.sleep(0.3)
    t.join
    # One wait ended by the wakeup, another by the timer.
    assert_operator @machine.metrics[:total_waits] - waits, :>=, 2
  end

  def test_schedule_from_another_thread
    main = Fiber.current
    t = Thread.new do
      sleep 0.05
      @machine.schedule(main, :from_thread)
    end
    assert_equal :from_thread, @machine.yield
    t.join
  end

  def test_thread_machine
    m = Thread.current.machine
    assert_kind_of UM, m
    assert_same m, Thread.current.machine
    other = Thread.new { Thread.current.machine }.value
    refute_same m, other
  end

  def test_thread_machine_of_another_thread
    q = Queue.new
    t = Thread.new { q.pop }
    assert_raises(UM::Error) { t.machine }
    q << 1
    t.join
  end

  def test_io_uring_disabled
    path = "/proc/sys/kernel/io_uring_disabled"
    skip "kernel.io_uring_disabled is not writable here" unless File.writable?(path)

    status = in_child do
      old = File.read(path)
      begin
        File.write(path, "2")
        UM.new
        false
      rescue UM::Error => e
        e.message.include?("io_uring_disabled")
      ensure
        File.write(path, old)
      end
    end
    assert status.success?
  end
end

class MachineReservedFdTest < UMTestCase
  # Ruby's reserved fds (the timer thread's pipe or eventfd): IO.for_fd
  # refuses them.
  def reserved_fds
    Dir.children("/proc/self/fd").map(&:to_i).select do |fd|
      IO.for_fd(fd, autoclose: false)
      false
    rescue ArgumentError => e
      e.message.include?("reserve")
    rescue SystemCallError
      false
    end
  end

  def fd_links
    Dir.children("/proc/self/fd").filter_map do |fd|
      [fd.to_i, File.readlink("/proc/self/fd/#{fd}")]
    rescue Errno::ENOENT
      nil
    end
  end

  def test_close_refuses_ruby_reserved_fds
    fds = reserved_fds
    skip "this Ruby reserves no fd" if fds.empty?
    fds.each do |fd|
      e = assert_raises(UM::Error) { @machine.close(fd) }
      assert_match(/reserved by the Ruby VM/, e.message)
      assert_raises(UM::Error) { @machine.close_async(fd) }
    end
    @machine.sleep(0.01) # a close_async that went through would be done by now
    assert_equal fds, reserved_fds
    # The VM still runs threads (the timer thread uses those fds).
    assert_equal 42, Thread.new { sleep 0.01; 42 }.value
  end

  def test_close_refuses_the_machines_own_fds
    GC.disable # no other machine's fd closed and reused meanwhile
    before = fd_links
    m = UM.new(64)
    own = (fd_links - before).map(&:first)
    GC.enable
    assert_equal 2, own.size
    own.each do |fd|
      e = assert_raises(UM::Error) { m.close(fd) }
      assert_match(/belongs to the machine/, e.message)
      assert_raises(UM::Error) { m.close_async(fd) }
    end
    assert_in_delta 0.01, m.sleep(0.01), 0.05 # the machine still works
    m.close
  end

  def test_pr_set_child_subreaper
    status = in_child do
      UM.pr_set_child_subreaper == true &&
        # A grandchild orphaned by its parent is re-parented to us.
        begin
          r, w = UM.pipe
          child = fork do
            fork do
              IO.for_fd(w, autoclose: false).syswrite(Process.ppid.to_s)
              sleep 0.2
              IO.for_fd(w, autoclose: false).syswrite(" #{Process.ppid}")
              exit!(0)
            end
            exit!(0)
          end
          Process.wait(child)
          IO.for_fd(w).close
          out = IO.for_fd(r).read
          Process.wait # the grandchild is our child now
          out.split.last.to_i == Process.pid && UM.pr_set_child_subreaper(false) == false
        end
    end
    assert status.success?
  end

  def test_accept_into_queue_checks_the_queue
    fd = @machine.socket(UM::AF_INET, UM::SOCK_STREAM, 0, 0)
    track_fd(fd)
    [nil, [], Queue.new].each do |bad|
      Timeout.timeout(5) do
        e = assert_raises(TypeError) { @machine.accept_into_queue(fd, bad) }
        assert_match(/UM::Queue/, e.message)
      end
    end
  end
end
