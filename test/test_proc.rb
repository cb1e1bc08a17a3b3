# frozen_string_literal: true

require_relative "helper"

class ProcTest < UMTestCase
  def setup
    super
    skip "waitid needs Linux 6.7 (IORING_OP_WAITID)" if UM.kernel_version < 607
    @pids = []
  end

  def teardown
    @pids&.each do |pid|
      Process.kill(:KILL, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    super
  end

  # A child that exits at once with +code+.
  def child_exiting(code)
    track_pid(fork { exit!(code) })
  end

  # A child that runs until it is killed.
  def child_sleeping
    track_pid(Process.spawn("sleep", "30"))
  end

  def track_pid(pid)
    @pids << pid
    pid
  end

  def assert_reaped(pid)
    assert_raises(Errno::ECHILD) { Process.wait(pid) }
  end

  def test_waitid_exited
    pid = child_exiting(0)
    assert_equal [pid, 0, UM::CLD_EXITED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
    assert_reaped(pid)

    pid = child_exiting(42)
    assert_equal [pid, 42, UM::CLD_EXITED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
    assert_reaped(pid)
  end

  def test_waitid_killed
    pid = child_sleeping
    Process.kill(:KILL, pid)
    assert_equal [pid, UM::SIGKILL, UM::CLD_KILLED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)

    pid = child_sleeping
    Process.kill(:TERM, pid)
    assert_equal [pid, UM::SIGTERM, UM::CLD_KILLED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
    assert_reaped(pid)
  end

  def test_waitid_waits_for_the_child
    pid = track_pid(fork { sleep(0.1); exit!(3) })
    other = @machine.spin { :other_ran }
    t0 = monotonic
    assert_equal [pid, 3, UM::CLD_EXITED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
    assert_operator monotonic - t0, :>=, 0.05
    assert_equal :other_ran, @machine.join(other)
  end

  def test_waitid_stopped_and_continued
    pid = child_sleeping
    Process.kill(:STOP, pid)
    assert_equal [pid, UM::SIGSTOP, UM::CLD_STOPPED], @machine.waitid(UM::P_PID, pid, UM::WSTOPPED)

    Process.kill(:CONT, pid)
    assert_equal [pid, UM::SIGCONT, UM::CLD_CONTINUED], @machine.waitid(UM::P_PID, pid, UM::WCONTINUED)

    Process.kill(:KILL, pid)
    assert_equal [pid, UM::SIGKILL, UM::CLD_KILLED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
  end

  def test_waitid_wnowait_leaves_the_child_reapable
    pid = child_exiting(5)
    assert_equal [pid, 5, UM::CLD_EXITED], @machine.waitid(UM::P_PID, pid, UM::WEXITED | UM::WNOWAIT)
    assert_equal [pid, 5, UM::CLD_EXITED], @machine.waitid(UM::P_PID, pid, UM::WEXITED | UM::WNOWAIT)
    _, status = Process.wait2(pid)
    assert_equal 5, status.exitstatus
  end

  def test_waitid_wnohang
    pid = child_sleeping
    assert_equal [0, 0, 0], @machine.waitid(UM::P_PID, pid, UM::WEXITED | UM::WNOHANG)
    Process.kill(:KILL, pid)
    assert_equal [pid, UM::SIGKILL, UM::CLD_KILLED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
  end

  def test_waitid_pidfd
    pid = child_exiting(7)
    pidfd = track_fd(UM.pidfd_open(pid))
    assert_equal [pid, 7, UM::CLD_EXITED], @machine.waitid(UM::P_PIDFD, pidfd, UM::WEXITED)
    assert_reaped(pid)
  end

  def test_waitid_pidfd_kill
    pid = child_sleeping
    pidfd = track_fd(UM.pidfd_open(pid))
    UM.pidfd_send_signal(pidfd, UM::SIGKILL)
    assert_equal [pid, UM::SIGKILL, UM::CLD_KILLED], @machine.waitid(UM::P_PIDFD, pidfd, UM::WEXITED)
  end

  # In a child of its own, where no other child can be picked by P_ALL.
  def test_waitid_all
    status = in_child do
      machine = UM.new
      pids = [fork { exit!(11) }, fork { sleep(0.05); exit!(12) }]
      results = 2.times.map { machine.waitid(UM::P_ALL, 0, UM::WEXITED) }
      expected = pids.zip([11, 12]).map { |pid, code| [pid, code, UM::CLD_EXITED] }
      none_left = begin
        machine.waitid(UM::P_ALL, 0, UM::WEXITED)
        false
      rescue Errno::ECHILD
        true
      end
      results.sort == expected.sort && none_left
    end
    assert_predicate status, :success?
  end

  def test_waitid_concurrent_fibers
    codes = [3, 1, 2]
    pids = codes.map { |code| track_pid(fork { sleep(0.03 * code); exit!(code) }) }
    fibers = pids.map { |pid| @machine.spin { @machine.waitid(UM::P_PID, pid, UM::WEXITED) } }
    results = @machine.join(*fibers)
    assert_equal pids.zip(codes).map { |pid, code| [pid, code, UM::CLD_EXITED] }, results
    pids.each { |pid| assert_reaped(pid) }
    assert_no_pending_ops
  end

  def test_waitid_interrupted_by_timeout
    pid = child_sleeping
    assert_raises(Timeout::Error) do
      @machine.timeout(0.05, Timeout::Error) { @machine.waitid(UM::P_PID, pid, UM::WEXITED) }
    end
    assert_no_pending_ops

    # The cancelled wait consumed nothing: the child is still there.
    assert_nil Process.wait(pid, Process::WNOHANG)
    Process.kill(:KILL, pid)
    assert_equal [pid, UM::SIGKILL, UM::CLD_KILLED], @machine.waitid(UM::P_PID, pid, UM::WEXITED)
  end

  def test_waitid_woken_with_value
    pid = child_sleeping
    fiber = @machine.spin { @machine.waitid(UM::P_PID, pid, UM::WEXITED) }
    @machine.snooze
    @machine.schedule(fiber, :woken)
    assert_equal :woken, @machine.join(fiber)
    assert_no_pending_ops
    Process.kill(:KILL, pid)
    assert_equal pid, @machine.waitid(UM::P_PID, pid, UM::WEXITED).first
  end

  def test_waitid_errors
    e = assert_raises(Errno::ECHILD) { @machine.waitid(UM::P_PID, 1, UM::WEXITED) }
    assert_match(/waitid/, e.message)

    pid = child_exiting(0)
    @machine.waitid(UM::P_PID, pid, UM::WEXITED)
    assert_raises(Errno::ECHILD) { @machine.waitid(UM::P_PID, pid, UM::WEXITED) }

    assert_raises(Errno::EINVAL) { @machine.waitid(UM::P_PID, Process.pid, 0) }
    assert_raises(Errno::EBADF) { @machine.waitid(UM::P_PIDFD, 9999, UM::WEXITED) }
    assert_raises(TypeError) { @machine.waitid("1", pid, UM::WEXITED) }
    assert_raises(TypeError) { @machine.waitid(UM::P_PID, pid.to_s, UM::WEXITED) }
    assert_raises(TypeError) { @machine.waitid(UM::P_PID, pid, nil) }
    assert_raises(ArgumentError) { @machine.waitid(UM::P_PID, pid) }
    assert_no_pending_ops
  end

  def test_waitid_status_exited
    pid = child_exiting(42)
    status = @machine.waitid_status(UM::P_PID, pid, UM::WEXITED)
    assert_kind_of Process::Status, status
    assert_equal pid, status.pid
    assert_predicate status, :exited?
    assert_equal 42, status.exitstatus
    refute_predicate status, :success?
    refute_predicate status, :signaled?
    assert_reaped(pid)

    pid = child_exiting(0)
    status = @machine.waitid_status(UM::P_PID, pid, UM::WEXITED)
    assert_predicate status, :success?
    assert_reaped(pid)
  end

  def test_waitid_status_signaled
    [[:KILL, UM::SIGKILL], [:TERM, UM::SIGTERM]].each do |sig, signo|
      pid = child_sleeping
      Process.kill(sig, pid)
      status = @machine.waitid_status(UM::P_PID, pid, UM::WEXITED)
      assert_equal pid, status.pid
      assert_predicate status, :signaled?
      assert_equal signo, status.termsig
      refute_predicate status, :exited?
      assert_nil status.exitstatus
      assert_reaped(pid)
    end
  end

  def test_waitid_status_stopped
    pid = child_sleeping
    Process.kill(:STOP, pid)
    status = @machine.waitid_status(UM::P_PID, pid, UM::WSTOPPED)
    assert_equal pid, status.pid
    assert_predicate status, :stopped?
    assert_equal UM::SIGSTOP, status.stopsig
    refute_predicate status, :exited?
    refute_predicate status, :signaled?

    # The stop was reported once; the child lives on until it is killed.
    assert_equal [0, 0, 0], @machine.waitid(UM::P_PID, pid, UM::WSTOPPED | UM::WNOHANG)
    Process.kill(:KILL, pid)
    status = @machine.waitid_status(UM::P_PID, pid, UM::WEXITED)
    assert_equal UM::SIGKILL, status.termsig
    assert_reaped(pid)
  end

  def test_waitid_status_pidfd_and_all
    pid = child_exiting(9)
    pidfd = track_fd(UM.pidfd_open(pid))
    status = @machine.waitid_status(UM::P_PIDFD, pidfd, UM::WEXITED)
    assert_equal [pid, 9], [status.pid, status.exitstatus]
    assert_reaped(pid)

    status = in_child do
      machine = UM.new
      child = fork { exit!(13) }
      st = machine.waitid_status(UM::P_ALL, 0, UM::WEXITED)
      st.pid == child && st.exitstatus == 13
    end
    assert_predicate status, :success?
  end

  def test_waitid_status_wnohang
    pid = child_sleeping
    assert_nil @machine.waitid_status(UM::P_PID, pid, UM::WEXITED | UM::WNOHANG)
    Process.kill(:KILL, pid)
    assert_predicate @machine.waitid_status(UM::P_PID, pid, UM::WEXITED), :signaled?
  end

  def test_waitid_status_concurrent_fibers
    codes = [2, 3, 1]
    pids = codes.map { |code| track_pid(fork { sleep(0.03 * code); exit!(code) }) }
    fibers = pids.map { |pid| @machine.spin { @machine.waitid_status(UM::P_PID, pid, UM::WEXITED) } }
    statuses = @machine.join(*fibers)
    assert_equal pids, statuses.map(&:pid)
    assert_equal codes, statuses.map(&:exitstatus)
    pids.each { |pid| assert_reaped(pid) }
  end

  def test_waitid_status_interrupted_by_timeout
    pid = child_sleeping
    assert_raises(Timeout::Error) do
      @machine.timeout(0.05, Timeout::Error) { @machine.waitid_status(UM::P_PID, pid, UM::WEXITED) }
    end
    assert_no_pending_ops
    Process.kill(:TERM, pid)
    _, status = Process.wait2(pid)
    assert_equal UM::SIGTERM, status.termsig
  end

  def test_waitid_status_errors
    assert_raises(Errno::ECHILD) { @machine.waitid_status(UM::P_PID, 1, UM::WEXITED) }
    pid = child_exiting(0)
    @machine.waitid_status(UM::P_PID, pid, UM::WEXITED)
    assert_raises(Errno::ECHILD) { @machine.waitid_status(UM::P_PID, pid, UM::WEXITED) }
    assert_raises(ArgumentError) { @machine.waitid_status(UM::P_PID, pid, UM::WEXITED | UM::WNOWAIT) }
    assert_raises(TypeError) { @machine.waitid_status(UM::P_PID, pid, "x") }
    assert_raises(TypeError) { @machine.waitid_status(UM::P_PID, nil, UM::WEXITED) }
  end

  def test_cld_constants
    assert_equal [1, 2, 3, 4, 5, 6],
      [UM::CLD_EXITED, UM::CLD_KILLED, UM::CLD_DUMPED, UM::CLD_TRAPPED, UM::CLD_STOPPED, UM::CLD_CONTINUED]
  end
end

# Only on kernels without IORING_OP_WAITID (before 6.7).
if UM.kernel_version < 607
  class WaitidOldKernelTest < UMTestCase
    def test_waitid_names_the_kernel_needed
      e = assert_raises(UM::Error) { @machine.waitid(UM::P_ALL, 0, UM::WEXITED | UM::WNOHANG) }
      assert_match(/6\.7/, e.message)
    end
  end
end
